"""The PN532 NFC reader: its frames, the driver against the simulated chip, faults, probe, config.

Byte sequences come from the PN532 User Manual (UM0701-02, 6.2 and 7.2.2);
Adafruit's CircuitPython driver, run against the same simulated chip, checks
that the simulation speaks the protocol the way a well-used driver expects.
"""

from __future__ import annotations

import errno
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smbus2 import i2c_msg

from monitor.clock import RealClock, SimClock
from monitor.config import Config, NfcConfig, load, parse
from monitor.errors import ConfigError, SensorGone, SensorNotFound, SensorStuck
from monitor.i2c import Pn532, Tap
from monitor.i2c.pn532 import (
    ACK_FRAME,
    NACK_FRAME,
    FirmwareVersion,
    FrameError,
    TargetA,
    TruncatedFrame,
    encode_frame,
    parse_firmware,
    parse_frame,
    parse_targets_a,
    read_firmware,
)
from monitor.i2c.probe import Expected, identify, probe, report, scan
from monitor.sensors import SensorSlot
from monitor.sim import Nau7802Sim, Pn532Sim, SimBus, SimChip, Tag, TagSchedule
from monitor.sim.rig import simulated_bus

ROOT = Path(__file__).resolve().parents[1]
ADDR = 0x24
UID4 = bytes.fromhex("de ad be ef")
UID7 = bytes.fromhex("04 a2 24 3a 5e 5b 80")
UID10 = bytes.fromhex("04 11 22 33 44 55 66 77 88 99")
#: UM0701-02 7.2.2: GetFirmwareVersion, and the answer of a PN532 v1.6
GET_FIRMWARE = bytes.fromhex("00 00 ff 02 fe d4 02 2a 00")
FIRMWARE_ANSWER = bytes.fromhex("00 00 ff 06 fa d5 03 32 01 06 07 e8 00")
LIST_TYPE_A = bytes.fromhex("00 00 ff 04 fc d4 4a 01 00 e1 00")
FIELD_OFF = bytes.fromhex("00 00 ff 04 fc d4 32 01 00 f9 00")
STATION_POLL_S = 0.1  # an MPU-6050 at 1 kHz is drained every 0.1 s: the station loop's cadence


def make(tags=None, **kwargs):
    clock = SimClock()
    bus = SimBus()
    sim = bus.attach(ADDR, Pn532Sim(tags, clock=clock))
    reader = Pn532(bus, clock=clock, **kwargs)
    return clock, bus, sim, reader


def run(
    reader: Pn532,
    clock: SimClock,
    seconds: float,
    cadence: float = STATION_POLL_S,
    errors: list | None = None,
) -> list[Tap]:
    """Poll as a station does; SensorErrors are collected (or raised when ``errors`` is None)."""
    taps = []
    end = clock.now() + seconds
    while clock.now() < end:
        try:
            tap = reader.poll()
        except (SensorGone, SensorStuck) as err:
            if errors is None:
                raise
            errors.append(err)
            tap = None
        if tap is not None:
            taps.append(tap)
        clock.sleep(cadence)
    return taps


def wire(bus: SimBus, since: int = 0) -> list[tuple[str, bytes]]:
    """Every message to the PN532 in the bus log from index ``since`` on."""
    return [m for t in list(bus.log)[since:] if t.address == ADDR for m in t.messages]


def written(bus: SimBus, since: int = 0) -> list[bytes]:
    return [data for kind, data in wire(bus, since) if kind == "w"]


# -- frames ----------------------------------------------------------------------------------
def test_frames_are_built_as_the_user_manual_gives_them():
    assert encode_frame(b"\x02") == GET_FIRMWARE
    assert encode_frame(bytes((0x4A, 0x01, 0x00))) == LIST_TYPE_A
    assert encode_frame(b"\x03\x32\x01\x06\x07", tfi=0xD5) == FIRMWARE_ANSWER
    answer = parse_frame(FIRMWARE_ANSWER)
    assert (answer.kind, answer.tfi, answer.data) == ("info", 0xD5, b"\x03\x32\x01\x06\x07")
    assert parse_firmware(answer.data[1:]) == FirmwareVersion(0x32, 1, 6, 7)
    assert str(parse_firmware(answer.data[1:])) == "PN532 v1.6"
    assert parse_frame(ACK_FRAME).kind == "ack"
    assert parse_frame(NACK_FRAME).kind == "nack"
    assert parse_frame(bytes.fromhex("00 00 ff 01 ff 7f 81 00")).kind == "error"


def test_preamble_and_trailing_bytes_are_tolerated_and_extended_frames_work():
    assert (
        parse_frame(b"\x00\x00\x00" + FIRMWARE_ANSWER + b"\x00\x00\x17").data
        == b"\x03\x32\x01\x06\x07"
    )
    payload = bytes(range(256)) + bytes(8)  # the firmware's most: 264 data bytes
    frame = encode_frame(payload)
    assert frame[3:5] == b"\xff\xff"  # the extended frame's marker
    assert parse_frame(frame).data == payload
    with pytest.raises(ValueError):
        encode_frame(bytes(265))


@pytest.mark.parametrize(
    "bad, why",
    [
        (bytes.fromhex("00 00 ff 06 fb d5 03 32 01 06 07 e8 00"), "length checksum"),
        (bytes.fromhex("00 00 ff 06 fa d5 03 32 01 06 07 e9 00"), "data checksum"),
        (bytes.fromhex("00 00 ff 06 fa d5 03 32 01 06 07 e8 01"), "postamble"),
        (bytes.fromhex("00 00 fe 06 fa d5 03 32 01 06 07 e8 00"), "start code"),
        (bytes.fromhex("00 00 ff 02 fe aa 03 53 00"), "frame identifier"),
    ],
)
def test_damaged_frames_are_refused_with_the_reason(bad, why):
    with pytest.raises(FrameError, match=why):
        parse_frame(bad)


def test_a_cut_short_frame_says_how_long_it_is():
    with pytest.raises(TruncatedFrame) as err:
        parse_frame(FIRMWARE_ANSWER[:9])
    assert err.value.needed == len(FIRMWARE_ANSWER)


def test_target_data_decodes_whole_uids_or_nothing():
    seven = bytes.fromhex("01 01 00 44 00 07") + UID7
    assert parse_targets_a(seven) == (TargetA(1, 0x0044, 0x00, UID7),)
    assert parse_targets_a(b"\x00") == ()
    with pytest.raises(FrameError):
        parse_targets_a(seven[:-1])  # a UID one byte short
    with pytest.raises(FrameError):
        parse_targets_a(bytes.fromhex("01 01 00 04 08 05") + bytes(5))  # no UID has 5 bytes
    ats = bytes.fromhex("05 78 80 70 02")
    iso = parse_targets_a(bytes.fromhex("01 01 03 44 20 07") + UID7 + ats)
    assert iso[0].ats == ats and iso[0].uid == UID7


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_parsers_never_fail_any_other_way_on_random_bytes(data):
    for parser in (parse_frame, parse_targets_a, parse_firmware):
        try:
            parser(data)
        except FrameError:
            continue  # the one way a parser may refuse bytes


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=264), st.integers(0, 4), st.binary(max_size=8))
def test_any_payload_survives_the_round_trip(payload, preamble, tail):
    frame = parse_frame(bytes(preamble) + encode_frame(payload, tfi=0xD5) + tail)
    assert (frame.kind, frame.tfi, frame.data) == ("info", 0xD5, payload)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=40), st.data())
def test_one_damaged_byte_never_passes_as_another_payload(payload, data):
    frame = bytearray(encode_frame(payload, tfi=0xD5))
    i = data.draw(st.integers(0, len(frame) - 1))
    frame[i] ^= data.draw(st.integers(1, 255))
    try:
        parsed = parse_frame(bytes(frame))
    except FrameError:
        return
    # Only the preamble may change unnoticed (it is any number of zero bytes).
    assert parsed.data == payload and i == 0


# -- the driver against the simulated chip ---------------------------------------------------------
def test_start_up_identifies_and_configures_on_the_wire():
    _clock, bus, sim, reader = make()
    messages = wire(bus)
    # GetFirmwareVersion, then the ACK (status byte first), then the answer
    assert messages[0] == ("w", GET_FIRMWARE)
    assert ("r", b"\x01" + ACK_FRAME) in messages[1:3]
    assert ("r", b"\x01" + FIRMWARE_ANSWER) in messages
    assert written(bus) == [
        GET_FIRMWARE,
        bytes.fromhex("00 00 ff 05 fb d4 14 01 14 01 02 00"),  # SAMConfiguration: normal mode
        bytes.fromhex(
            "00 00 ff 06 fa d4 32 05 ff 01 01 f4 00"
        ),  # RFConfiguration MaxRetries: 2 tries
    ]
    assert str(reader.firmware) == "PN532 v1.6"
    assert sim.sam_mode == 1 and sim.max_retries == [0xFF, 0x01, 0x01]


@pytest.mark.parametrize("uid", [UID4, UID7, UID10], ids=["4-byte", "7-byte", "10-byte"])
def test_a_tap_is_one_event_with_the_whole_uid(uid):
    clock, _bus, _sim, reader = make([(1.0, 3.0, uid), (5.0, 5.6, uid)])
    taps = run(reader, clock, 7.0)
    assert [t.uid for t in taps] == [
        uid,
        uid,
    ]  # held 2 s: one tap; lifted and tapped again: another
    first = taps[0]
    assert 1.0 <= first.t <= 1.0 + reader.poll_interval_s + STATION_POLL_S + 0.01
    assert first.uid_hex == uid.hex() and not first.random_id
    assert reader.stats.removals == 2 and reader.present is None
    assert reader.stats.taps == 2 and reader.stats.faults == 0


def test_a_listing_cycle_on_the_wire():
    clock, bus, sim, reader = make([(0.0, 10.0, UID4)])
    start = len(bus.log)
    taps = run(reader, clock, 0.15)
    assert [t.uid for t in taps] == [UID4]
    messages = wire(bus, start)
    assert messages[0] == ("w", LIST_TYPE_A)
    assert messages[1] == ("r", b"\x01" + ACK_FRAME)
    answer = encode_frame(bytes.fromhex("4b 01 01 00 04 08 04") + UID4, tfi=0xD5)
    assert messages[2] == (
        "r",
        (b"\x01" + answer).ljust(26, b"\x00"),
    )  # read as long as a 10-byte UID needs
    assert messages[3] == ("w", FIELD_OFF)  # the card powers down between listings
    assert not sim.field_on


def test_polling_never_stalls_and_the_bus_rests_between_listings():
    clock, bus, _sim, reader = make([(0.5, 4.0, UID7)])
    longest = 0.0
    quiet_polls = 0
    for _ in range(100):
        before_t, before_n = clock.now(), bus.stats.transactions
        reader.poll()
        longest = max(longest, clock.now() - before_t)
        quiet_polls += bus.stats.transactions == before_n
        clock.sleep(0.02)  # a fast loop: most polls find nothing due
    assert longest <= 0.006
    assert quiet_polls >= 60


def test_a_card_held_for_long_stays_one_tap():
    clock, _bus, _sim, reader = make([(0.0, 30.0, UID7)])
    taps = run(reader, clock, 30.0)
    assert len(taps) == 1 and reader.stats.listings >= 140
    assert reader.present == UID7


def test_an_answer_longer_than_read_is_asked_for_again_whole():
    # A DESFire: 7-byte UID, ISO/IEC 14443-4, so the PN532 appends its ATS;
    # longer than the usual read.
    ats = bytes.fromhex("06 75 77 81 02 80")
    clock, _bus, _sim, reader = make([(0.0, 5.0, Tag(UID7, atqa=0x0344, ats=ats))])
    taps = run(reader, clock, 0.5)
    assert [(t.uid, t.sak) for t in taps] == [(UID7, 0x20)]
    assert reader.stats.nacks == 1 and reader.stats.bad_frames == 0


def test_a_phone_with_a_new_random_id_each_time_is_one_presence():
    class Phone:
        def tag_at(self, t):
            if 1.0 <= t < 4.0:
                return Tag(
                    bytes((0x08, int(t * 10) % 256, 0x33, 0x44)),
                    sak=0x20,
                    ats=bytes.fromhex("05 78 80 70 02"),
                )
            return None

    clock, _bus, _sim, reader = make(Phone())
    taps = run(reader, clock, 5.0)
    assert len(taps) == 1 and taps[0].random_id


# -- faults ----------------------------------------------------------------------------------------
def test_a_nacked_write_is_sent_again():
    clock, bus, _sim, reader = make([(0.0, 5.0, UID4)])
    bus.fail(ADDR, count=1)  # the next transfer is NACKed on the bus
    taps = run(reader, clock, 0.5)
    assert [t.uid for t in taps] == [UID4]
    assert reader.device.stats.retries == 1


def test_a_command_damaged_on_the_way_is_never_acked_and_sent_again():
    clock, bus, sim, reader = make([(0.0, 5.0, UID4)])
    start = len(bus.log)
    sim.corrupt_commands(1)
    taps = run(reader, clock, 0.5)
    assert [t.uid for t in taps] == [UID4]
    assert reader.stats.resends == 1
    assert written(bus, start)[:2] == [LIST_TYPE_A, LIST_TYPE_A]


def test_a_damaged_ack_makes_the_command_go_again():
    clock, _bus, sim, reader = make([(0.0, 5.0, UID7)])
    sim.garble_acks(1)
    taps = run(reader, clock, 0.5)
    assert [t.uid for t in taps] == [UID7]
    assert reader.stats.resends == 1 and reader.stats.bad_frames == 1


def test_a_bad_checksum_is_refused_and_the_answer_asked_for_again():
    clock, bus, sim, reader = make([(0.0, 5.0, UID7)])
    start = len(bus.log)
    sim.garble_answers(1)
    taps = run(reader, clock, 0.5)
    assert [t.uid for t in taps] == [UID7]  # the right UID, once
    assert reader.stats.nacks == 1 and reader.stats.bad_frames == 1
    assert written(bus, start)[:2] == [LIST_TYPE_A, NACK_FRAME]


def test_an_answer_damaged_every_time_is_given_up_without_a_wrong_uid():
    clock, bus, sim, reader = make([(0.0, 5.0, UID7)])
    start = len(bus.log)
    sim.garble_answers(4)  # the first answer and all three retransmissions
    taps = run(reader, clock, 0.15)
    assert taps == []
    assert reader.stats.nacks == 3 and reader.stats.failures == 1
    assert ACK_FRAME in written(bus, start)  # the command aborted
    taps = run(reader, clock, 1.0)
    assert [t.uid for t in taps] == [UID7] and reader.stats.faults == 0


@pytest.mark.parametrize("uid", [UID4, UID7], ids=["4-byte", "7-byte"])
def test_a_card_removed_mid_read_gives_no_half_uid(uid):
    clock, _bus, sim, reader = make([(0.0, 20.0, uid)])
    sim.remove_mid_read(
        away_s=0.5
    )  # lifted after the first cascade level, back half a second later
    taps = run(reader, clock, 0.15)
    assert sim.lost_mid_read == 1 and reader.stats.listings == 1
    assert taps == [] and reader.present is None
    taps = run(reader, clock, 1.0)
    assert [t.uid for t in taps] == [uid]  # back: the whole UID, once
    sim.remove_mid_read(away_s=0.0)  # at the edge of the field: the listing's second try finds it
    taps = run(reader, clock, 1.0)
    assert taps == [] and reader.present == uid and sim.lost_mid_read == 2
    sim.remove_mid_read(away_s=1.0)  # lifted mid-read and tapped again a second later: a new tap
    taps = run(reader, clock, 3.0)
    assert [t.uid for t in taps] == [uid]
    assert reader.stats.removals == 1 and reader.stats.faults == 0


def test_a_lost_answer_times_out_and_is_aborted():
    clock, bus, sim, reader = make([(0.0, 10.0, UID4)])
    start = len(bus.log)
    sim.lose_answers(1)
    taps = run(reader, clock, 1.0)
    assert [t.uid for t in taps] == [UID4]
    assert reader.stats.aborts == 1 and reader.stats.failures == 1 and reader.stats.faults == 0
    assert ACK_FRAME in written(bus, start)


def test_a_chip_that_is_not_ready_for_long_is_stuck_then_recovers():
    clock, bus, sim, reader = make([(6.0, 8.0, UID7)])
    run(reader, clock, 0.5)
    sim.hang(3.0)
    hung_at = clock.now()
    with pytest.raises(SensorStuck) as err:
        run(reader, clock, 3.0)
    assert "PN532 at 0x24" in str(err.value) and err.value.address == ADDR
    assert clock.now() - hung_at < 1.6  # reported within stuck_after_s and a listing
    # Between tries the reader does not touch the bus.
    before = bus.stats.transactions
    assert reader.poll() is None
    assert bus.stats.transactions == before and not reader.healthy
    errors: list = []
    taps = run(reader, clock, 7.0, errors=errors)
    assert all(isinstance(e, SensorStuck) for e in errors)
    assert [t.uid for t in taps] == [UID7]
    assert reader.stats.recoveries == 1


def test_a_vanished_chip_is_reported_gone_and_recovered():
    clock, bus, sim, reader = make([(5.0, 6.0, UID4)])
    run(reader, clock, 0.5)
    bus.vanish(ADDR, duration=2.0)
    errors: list = []
    taps = run(reader, clock, 7.0, errors=errors)
    assert errors and all(isinstance(e, SensorGone) for e in errors)
    assert len(errors) <= 3  # one a second at most while it is away
    assert [t.uid for t in taps] == [UID4]
    assert reader.stats.recoveries == 1
    firmware_asks = [c for _, c, _ in sim.commands if c == 0x02]
    assert len(firmware_asks) == 2  # identified again on its return


def test_a_reset_chip_is_configured_again():
    clock, bus, sim, reader = make([(3.0, 4.0, UID4)])
    run(reader, clock, 0.5)
    bus.brownout(ADDR)  # MaxRetries back to 0xFF: a listing waits forever
    assert sim.max_retries == [0xFF, 0x01, 0xFF]
    taps = run(reader, clock, 4.0)
    assert [t.uid for t in taps] == [UID4]
    assert sim.max_retries == [0xFF, 0x01, 0x01] and sim.sam_mode == 1
    assert reader.stats.failures == 1 and reader.stats.faults == 0


def test_nothing_at_the_address_says_what_to_check():
    clock = SimClock()
    with pytest.raises(SensorNotFound, match="i2cdetect -y 1` shows 24") as err:
        Pn532(SimBus(), clock=clock)
    assert "interface switches select I2C" in str(err.value)


def test_the_address_is_the_drivers():
    assert Pn532.check_address(0x25) == "the PN532 answers only at 0x24, not 0x25"
    with pytest.raises(ValueError, match="only at 0x24"):
        Pn532(SimBus(), 0x25, clock=SimClock())


def test_another_chip_answering_is_not_taken_for_a_pn532():
    clock = SimClock()
    bus = SimBus()
    bus.attach(ADDR, Pn532Sim(clock=clock, firmware=(0x33, 0x01, 0x00, 0x07)))  # a PN533
    with pytest.raises(SensorNotFound, match="not a PN532"):
        Pn532(bus, clock=clock)


def test_arguments_are_checked():
    clock, bus, _sim, _reader = make()
    with pytest.raises(ValueError, match="max_retries"):
        Pn532(bus, clock=clock, max_retries=255)
    with pytest.raises(ValueError, match="poll_interval_s"):
        Pn532(bus, clock=clock, poll_interval_s=0)


def test_closing_switches_the_field_off_even_mid_command():
    _clock, bus, sim, reader = make([(0.0, 9.0, UID4)])
    with reader:
        reader.poll()  # a listing is under way
    assert written(bus)[-2:] == [ACK_FRAME, FIELD_OFF]
    assert not sim.field_on
    bus.vanish(ADDR)
    reader.close()  # gone: still no error


def test_a_sensor_slot_reports_and_clears_the_fault():
    clock = SimClock()
    bus = SimBus()
    bus.attach(ADDR, Pn532Sim([(4.0, 5.0, UID4)], clock=clock))
    slot = SensorSlot("nfc", lambda: Pn532(bus, clock=clock), clock)
    taps = []
    for i in range(60):
        if i == 5:
            bus.vanish(ADDR, duration=1.5)
        tap = slot.poll(
            lambda _: slot.driver.healthy
        )  # healthy again once identified and configured
        if i == 12:
            assert slot.fault is not None and slot.fault.kind == "gone"
        if tap is not None:
            taps.append(tap)
        clock.sleep(STATION_POLL_S)
    assert slot.fault is None and slot.recoveries == 1
    assert [t.uid for t in taps] == [UID4]


def raw_exchange(bus: SimBus, clock: SimClock, data: bytes, answer_len: int = 40) -> bytes:
    """One command by hand: write its frame, read the ACK, read the answer frame."""
    bus.i2c_rdwr(i2c_msg.write(ADDR, encode_frame(data)))
    clock.sleep(0.001)
    ack = i2c_msg.read(ADDR, 7)
    bus.i2c_rdwr(ack)
    assert bytes(ack) == b"\x01" + ACK_FRAME
    clock.sleep(0.05)
    answer = i2c_msg.read(ADDR, answer_len)
    bus.i2c_rdwr(answer)
    assert bytes(answer)[0] == 0x01
    return bytes(answer)[1:]


def test_the_simulated_chip_answers_the_other_commands_and_refuses_nonsense():
    clock, bus, sim, _reader = make([(0.0, 60.0, UID4)])
    assert (
        parse_frame(raw_exchange(bus, clock, b"\x00\x00hello")).data == b"\x01hello"
    )  # Diagnose: echo
    raw_exchange(bus, clock, bytes((0x4A, 0x01, 0x00)))  # list the card
    status = parse_frame(raw_exchange(bus, clock, b"\x04")).data  # GetGeneralStatus
    assert status[:4] == bytes((0x05, 0x00, 0x01, 0x01))  # no error, field on, one target
    assert parse_frame(raw_exchange(bus, clock, b"\x52\x01")).data == b"\x53\x00"  # InRelease
    assert sim.active_uid is None
    for nonsense in (b"\x60", b"\x14\x09", b"\x32\x05\xff", b"\x4a\x03\x00"):
        assert parse_frame(raw_exchange(bus, clock, nonsense)).kind == "error"
    # A partial frame (a register-style write) is ignored: no ACK, status not ready.
    bus.write_byte_data(ADDR, 0x00, 0x00)
    assert bus.read_byte(ADDR) == 0x00


def test_an_error_frame_fails_the_exchange_without_a_retry():
    from monitor.i2c.pn532 import Command, _exchange, _Failed

    _clock, _bus, _sim, reader = make()
    with pytest.raises(_Failed, match="syntax error"):
        reader._link.call(_exchange(Command.IN_RELEASE, b""))  # InRelease without its Tg
    assert reader.stats.error_frames == 1 and reader.stats.nacks == 0 and reader.stats.resends == 0


# -- an outside reference: Adafruit's driver on the same simulated chip ---------------------------
class BusioOnSimBus:
    """What adafruit_bus_device asks of busio.I2C, done on a SimBus: one transfer per call."""

    def __init__(self, bus: SimBus):
        self.bus = bus

    def try_lock(self) -> bool:
        return True

    def unlock(self) -> None:
        pass

    def writeto(self, address, buffer, *, start=0, end=None):
        self.bus.i2c_rdwr(i2c_msg.write(address, bytes(buffer[start:end])))

    def readfrom_into(self, address, buffer, *, start=0, end=None):
        end = len(buffer) if end is None else end
        msg = i2c_msg.read(address, end - start)
        self.bus.i2c_rdwr(msg)
        buffer[start:end] = bytes(msg)


def test_adafruits_driver_reads_the_simulated_chip():
    import adafruit_pn532.i2c as peer  # the test extra installs it

    bus = SimBus()
    sim = bus.attach(ADDR, Pn532Sim([(0.0, 3600.0, UID7)], clock=RealClock()))
    pn532 = peer.PN532_I2C(BusioOnSimBus(bus))  # SAMConfiguration, then GetFirmwareVersion
    assert pn532.firmware_version == (0x32, 1, 6, 7)
    assert bytes(pn532.read_passive_target(timeout=0.5)) == UID7
    assert sim.sam_mode == 1


# -- probe, config, rig --------------------------------------------------------------------------
class Eeprom(SimChip):
    def power_on_reset(self) -> None:
        super().power_on_reset()
        self.regs[0x00] = 0xAA


def test_probe_identifies_the_pn532_by_its_firmware():
    clock = SimClock()
    bus = SimBus(clock=clock)
    bus.attach(ADDR, Pn532Sim(clock=clock))
    bus.attach(0x2A, Nau7802Sim(0.0, clock=clock))
    assert scan(bus) == [0x24, 0x2A]
    found = identify(bus, ADDR)
    assert (found.chip, found.part, found.id_value) == ("pn532", "PN532 v1.6", 0x32)
    assert read_firmware(bus, clock=clock) == FirmwareVersion(0x32, 1, 6, 7)
    rows = probe(bus, [Expected("nfc", "pn532", ADDR), Expected("scale", "nau7802", 0x2A)])
    assert {r.address: r.verdict for r in rows} == {0x24: "ok", 0x2A: "ok"}
    assert "0x24  PN532 v1.6" in report(rows)


def test_probe_does_not_mistake_another_device_at_0x24():
    clock = SimClock()
    bus = SimBus(clock=clock)
    bus.attach(ADDR, Eeprom(clock=clock))
    before = clock.now()
    assert identify(bus, ADDR).chip is None
    assert clock.now() - before < 0.5
    rows = probe(bus, [Expected("nfc", "pn532", ADDR)])
    assert rows[0].verdict.startswith("WRONG CHIP")


def test_probe_command_on_the_simulator_knows_the_reader(tmp_path):
    cfg = tmp_path / "monitor.toml"
    cfg.write_text('[station]\nsimulate = true\n[[imu]]\nname = "wrist"\n[nfc]\n')
    out = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "probe", "--config", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert re.search(r"0x24  PN532 v1\.6 .* nfc .* ok", out.stdout)


def test_the_nfc_table_is_optional_checked_and_documented():
    assert Config().nfc is None and load(ROOT / "config" / "monitor.toml").nfc is None
    # (environment=False: a real station with a reader also needs [athletes] secret_file)
    assert parse({"nfc": {}}, environment=False).nfc == NfcConfig()
    assert parse({"nfc": {"poll_interval_s": 0.5}}, environment=False).nfc.poll_interval_s == 0.5
    for bad, key in [
        ({"address": 0x48}, "nfc.address"),
        ({"chip": "rc522"}, "nfc.chip"),
        ({"poll_interval_s": 0.001}, "nfc.poll_interval_s"),
        ({"interval": 1}, "nfc.interval"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse({"nfc": bad})
        assert err.value.key == key
    # The example documents every key with its default (commented out, like the scale).
    text = (ROOT / "config" / "monitor.toml").read_text()
    block = re.search(r"^# \[nfc\]\n((?:# \w+ = .*\n)+)", text, re.M).group(0)
    documented = tomllib.loads(re.sub(r"^# ", "", block, flags=re.M))["nfc"]
    assert parse({"nfc": documented}, environment=False).nfc == NfcConfig()
    assert set(documented) == {"chip", "address", "poll_interval_s"}


def test_the_simulated_rig_has_athletes_tapping_in_turns():
    cfg = parse({"station": {"simulate": True}, "nfc": {}})
    clock = SimClock()
    bus = simulated_bus(cfg, clock)
    assert ADDR in bus.addresses
    reader = Pn532(bus, cfg.nfc.address, clock=clock, poll_interval_s=cfg.nfc.poll_interval_s)
    taps = run(reader, clock, 130.0)
    # Each turn: a tap in at its start and a tap out before it ends; then the next athlete's turn.
    uids = [t.uid for t in taps]
    assert len(uids) == 5 and uids[0] == uids[1] != uids[2] == uids[3] != uids[4] != uids[0]
    assert 5.0 <= taps[0].t < 5.4 and 63.8 <= taps[1].t < 64.2


def test_tag_schedules_check_their_taps():
    with pytest.raises(ValueError):
        TagSchedule([(2.0, 1.0, UID4)])
    with pytest.raises(ValueError):
        Tag(bytes(5))
    assert TagSchedule([(1.0, 2.0, UID4)], period=10.0).tag_at(11.5).uid == UID4


def test_the_bus_log_keeps_each_message_of_a_combined_transfer():
    bus = SimBus()
    bus.attach(0x50, Eeprom())
    w, r = i2c_msg.write(0x50, [0x00]), i2c_msg.read(0x50, 2)
    bus.i2c_rdwr(w, r)
    assert bus.log[-1].messages == (("w", b"\x00"), ("r", b"\xaa\x00"))
    assert bus.log[-1].register == 0x00  # register chips: as before


def test_a_nack_on_the_bus_is_not_a_frame_nack():
    """The bus refusing the address (errno) and the PN532's NACK frame are different things."""
    clock, bus, _sim, reader = make()
    bus.fail(ADDR, count=8, code=errno.EREMOTEIO)  # longer than the retries: the reader is gone
    with pytest.raises(SensorGone):
        run(reader, clock, 0.3)
    assert reader.stats.nacks == 0
