"""NXP PN532 NFC reader on I2C: athletes check in by tapping a tag.

The common Raspberry Pi NFC boards carry a PN532 at address 0x24 (set the
board's interface switches or jumpers to I2C). The chip has no registers to
read: the host and the PN532 exchange *frames*, as the PN532 User Manual
(UM0701-02, section 6.2) gives them::

    reader = Pn532(bus, clock=clock)       # GetFirmwareVersion, SAMConfiguration, RFConfiguration
    print(reader.firmware)                 # PN532 v1.6
    while True:
        tap = reader.poll()                # a few ms at most; a Tap or None
        if tap is not None:
            print(tap.uid_hex, tap.t)      # "04a2243a5e5b80" once per tap, not once per poll
        clock.sleep(0.1)

How the conversation goes (one command at a time, half duplex):

* the host writes a normal information frame, ``00 00 FF LEN LCS D4 cmd params DCS 00``
  (LEN + LCS = 0 and D4 + cmd + params + DCS = 0, modulo 256);
* every I2C read from the PN532 starts with a status byte whose bit 0 says
  whether it has something to send; when it does, the frame follows in the
  same read. First comes the ACK frame ``00 00 FF 00 FF 00``, which says the
  command arrived intact; later the response, ``00 00 FF LEN LCS D5 cmd+1 ...``;
* a response that arrives damaged (a checksum that does not add up) is asked
  for again with the NACK frame ``00 00 FF FF 00 00``; a command that was never
  ACKed (line noise damaged it and the chip ignored it, or the write was NACKed
  on the bus) is sent again; an ACK from the host aborts a command that takes
  too long. Each of these is bounded: 3 sends, 3 NACKs, a timeout per command.

How it reads tags without stalling the station: :meth:`Pn532.poll` advances
one exchange as far as it can go without waiting more than a few milliseconds
(an ACK comes within about a millisecond; the answer to InListPassiveTarget
takes tens), and returns. Every ``poll_interval_s`` it lists the ISO/IEC 14443
type A targets in the field (InListPassiveTarget, 106 kbps, one target), with
RFConfiguration MaxRetries set so that an empty field answers after
``max_retries + 1`` activation attempts instead of waiting for a card forever;
then it switches the RF field off, which saves power and lets the card power
down, so the next listing finds it afresh rather than already selected.

How a tap becomes one event: the UID of the card in the field is remembered;
a listing that returns the same card again is no news, and the card counts as
gone only after ``absent_polls`` listings in a row without it. A phone that
shows a random UID (4 bytes starting 0x08) is the same presence on every
listing, whatever the number.

Faults are :class:`~monitor.errors.SensorError` kinds, as for the other chips:
:class:`~monitor.errors.SensorGone` when the bus NACKs the address after the
bounded retries, :class:`~monitor.errors.SensorStuck` when it answers but no
command has completed for ``stuck_after_s``. The next calls try again every
``retry_s`` (identify, configure, list) without blocking in between.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from smbus2 import i2c_msg

from ..clock import Clock, RealClock
from ..errors import SensorGone, SensorNotFound, SensorStuck
from .chip import Chip, ChipStats
from .device import Bus, I2CDevice, RetryPolicy
from .registers import RegisterMap

PN532_ADDRESS = 0x24

HOST_TO_PN532 = 0xD4
PN532_TO_HOST = 0xD5
#: the TFI of the error frame, ``00 00 FF 01 FF 7F 81 00``: a syntax error at application level
ERROR_TFI = 0x7F
ACK_FRAME = bytes((0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00))
NACK_FRAME = bytes((0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00))
#: bit 0 of the status byte that starts every I2C read: the PN532 has a frame to send
STATUS_READY = 0x01
#: the firmware's limit on TFI plus packet data (UM0701-02 6.2.1.2)
MAX_FRAME_DATA = 265
#: IC byte of GetFirmwareVersion for a PN532
PN532_IC = 0x32


class Command(enum.IntEnum):
    """Command codes (UM0701-02 section 7); the response code is the command code plus one."""

    DIAGNOSE = 0x00
    GET_FIRMWARE_VERSION = 0x02
    GET_GENERAL_STATUS = 0x04
    SAM_CONFIGURATION = 0x14
    RF_CONFIGURATION = 0x32
    IN_LIST_PASSIVE_TARGET = 0x4A
    IN_RELEASE = 0x52

    @property
    def response(self) -> int:
        return self + 1


class SamMode(enum.IntEnum):
    NORMAL = 0x01  # no SAM: the mode for a reader
    VIRTUAL_CARD = 0x02
    WIRED_CARD = 0x03
    DUAL_CARD = 0x04


class RfItem(enum.IntEnum):
    """RFConfiguration CfgItem values."""

    FIELD = 0x01  # one byte: bit 1 RF on, bit 0 auto RF collision avoidance
    TIMINGS = 0x02
    MAX_RETRY_COM = 0x04
    MAX_RETRIES = 0x05  # MxRtyATR, MxRtyPSL, MxRtyPassiveActivation (0xFF: forever)


RF_FIELD_ON = 0x02
#: InListPassiveTarget BrTy: 106 kbps ISO/IEC 14443 type A (MIFARE, NTAG, phones)
BRTY_106_TYPE_A = 0x00
#: firmware defaults for RFConfiguration MaxRetries, restored by a reset
DEFAULT_MAX_RETRIES = (0xFF, 0x01, 0xFF)

# -- timing: what the host allows; the chip's own timing is in monitor.sim.pn532 --
#: a command the PN532 has not ACKed in this long did not arrive intact: send it again
ACK_TIMEOUT_S = 0.05
#: GetFirmwareVersion, SAMConfiguration, RFConfiguration answer within a millisecond or two
QUICK_TIMEOUT_S = 0.1
#: the most one poll waits for an answer that is due within a millisecond or two
SHORT_WAIT_S = 0.005
READY_POLL_S = 0.001
MAX_SENDS = 3
MAX_NACKS = 3
#: a poll this close to the listing's due time counts as on time (loops are not that punctual)
DUE_SLACK_S = 0.002
#: most steps (one bus transfer each) in one poll, a guard against any loop in the logic
MAX_STEPS = 12


# -- frames ------------------------------------------------------------------------------------
class FrameError(ValueError):
    """Bytes that are not a valid PN532 frame (start code, checksums, postamble, TFI)."""


class TruncatedFrame(FrameError):
    """A frame that goes on past the bytes read; ``needed`` is how many it takes in all."""

    def __init__(self, message: str, needed: int):
        super().__init__(message)
        self.needed = needed


@dataclass(frozen=True)
class Frame:
    """One frame as read: ``kind`` is "ack", "nack", "info" or "error"; ``data`` the bytes
    after the TFI (command or response code first); ``size`` the bytes it took."""

    kind: str
    tfi: int | None = None
    data: bytes = b""
    size: int = 0


def _checksum(values) -> int:
    """The byte that makes ``values`` sum to zero modulo 256 (LCS and DCS)."""
    return -sum(values) & 0xFF


def encode_frame(data: bytes, tfi: int = HOST_TO_PN532) -> bytes:
    """A normal information frame carrying ``data`` (an extended frame past 254 bytes).

    encode_frame(bytes([0x02])).hex(" ")   # '00 00 ff 02 fe d4 02 2a 00' (GetFirmwareVersion)
    """
    body = bytes((tfi,)) + bytes(data)
    n = len(body)
    if n > MAX_FRAME_DATA:
        raise ValueError(
            f"a PN532 frame carries at most {MAX_FRAME_DATA - 1} data bytes, not {n - 1}"
        )
    if n <= 0xFF:
        header = bytes((0x00, 0x00, 0xFF, n, _checksum((n,))))
    else:
        hi, lo = n >> 8, n & 0xFF
        header = bytes((0x00, 0x00, 0xFF, 0xFF, 0xFF, hi, lo, _checksum((hi, lo))))
    return header + body + bytes((_checksum(body), 0x00))


def parse_frame(buf: bytes) -> Frame:
    """Parse the frame at the start of ``buf``; raise :class:`FrameError` if there is none.

    Preamble bytes (any number of 0x00) are skipped. Bytes after the
    postamble are ignored, since an I2C read may ask for more than the frame.

        parse_frame(bytes.fromhex("0000ff00ff00")).kind  # 'ack'
        parse_frame(bytes.fromhex("0000ff06fad50332010607e800")).data  # bytes 03 32 01 06 07
    """
    buf = bytes(buf)
    i = 0
    while i < len(buf) and buf[i] == 0x00:
        i += 1
    if i == len(buf):
        raise TruncatedFrame("no start code yet", len(buf) + 6)
    if i == 0 or buf[i] != 0xFF:
        raise FrameError(f"no start code 00 FF (found {buf[i]:02X} after {i} zero bytes)")
    i += 1  # past the start code
    if len(buf) < i + 3:
        raise TruncatedFrame("frame ends in its header", i + 3)
    a, b = buf[i], buf[i + 1]
    if (a, b) in ((0x00, 0xFF), (0xFF, 0x00)):
        if buf[i + 2] != 0x00:
            raise FrameError("ACK/NACK frame without its postamble")
        return Frame("ack" if a == 0x00 else "nack", size=i + 3)
    if (a, b) == (0xFF, 0xFF):
        if len(buf) < i + 5:
            raise TruncatedFrame("extended frame ends in its header", i + 5)
        hi, lo, lcs = buf[i + 2], buf[i + 3], buf[i + 4]
        if (hi + lo + lcs) & 0xFF:
            raise FrameError("extended length checksum does not add up")
        length = (hi << 8) | lo
        start = i + 5
    else:
        if (a + b) & 0xFF:
            raise FrameError(f"length checksum does not add up (LEN {a:02X}, LCS {b:02X})")
        length = a
        start = i + 2
    if not 1 <= length <= MAX_FRAME_DATA:
        raise FrameError(f"frame length {length} is not 1..{MAX_FRAME_DATA}")
    end = start + length  # DCS at end, postamble after it
    if len(buf) < end + 2:
        raise TruncatedFrame(f"frame of {length} bytes cut short", end + 2)
    body = buf[start:end]
    if (sum(body) + buf[end]) & 0xFF:
        raise FrameError("data checksum does not add up")
    if buf[end + 1] != 0x00:
        raise FrameError(f"postamble is {buf[end + 1]:02X}, not 00")
    tfi = body[0]
    if tfi == ERROR_TFI and length == 1:
        return Frame("error", tfi, b"", end + 2)
    if tfi not in (HOST_TO_PN532, PN532_TO_HOST):
        raise FrameError(f"unknown frame identifier {tfi:02X}")
    return Frame("info", tfi, body[1:], end + 2)


# -- what the answers mean ------------------------------------------------------------------------
@dataclass(frozen=True)
class FirmwareVersion:
    """GetFirmwareVersion: IC (0x32 for a PN532), version, revision, supported protocols."""

    ic: int
    version: int
    revision: int
    support: int

    @property
    def part(self) -> str:
        return f"PN5{self.ic:02X}"

    def __str__(self) -> str:
        return f"{self.part} v{self.version}.{self.revision}"


def parse_firmware(data: bytes) -> FirmwareVersion:
    """The bytes after the response code 0x03."""
    if len(data) != 4:
        raise FrameError(f"GetFirmwareVersion answers 4 bytes, not {len(data)}")
    return FirmwareVersion(*data)


@dataclass(frozen=True)
class TargetA:
    """An ISO/IEC 14443 type A target as InListPassiveTarget reports it."""

    tg: int
    atqa: int  # SENS_RES
    sak: int  # SEL_RES
    uid: bytes  # NFCID1: 4, 7 or 10 bytes
    ats: bytes = b""


UID_LENGTHS = (4, 7, 10)
#: SEL_RES bit 6: the target is ISO/IEC 14443-4 compliant and the PN532 appends its ATS
SAK_ISO14443_4 = 0x20


def parse_targets_a(data: bytes) -> tuple[TargetA, ...]:
    """The bytes after the response code 0x4B for BrTy 106 kbps type A: NbTg, then each target.

    Anything inconsistent raises :class:`FrameError`: a UID is delivered whole or not at all.
    """
    if not data:
        raise FrameError("InListPassiveTarget answer without NbTg")
    count = data[0]
    if count > 2:
        raise FrameError(f"NbTg is {count}; the PN532 lists at most 2 targets")
    targets = []
    i = 1
    for _ in range(count):
        if len(data) < i + 5:
            raise FrameError("target data cut short")
        tg, atqa, sak, n = (
            data[i],
            int.from_bytes(data[i + 1 : i + 3], "big"),
            data[i + 3],
            data[i + 4],
        )
        if n not in UID_LENGTHS:
            raise FrameError(f"NFCID1 of {n} bytes; a type A UID has 4, 7 or 10")
        i += 5
        if len(data) < i + n:
            raise FrameError("UID cut short")
        uid = data[i : i + n]
        i += n
        ats = b""
        if sak & SAK_ISO14443_4 and i < len(data):
            # The ATS length byte counts itself.
            ats_len = data[i]
            if ats_len < 1 or len(data) < i + ats_len:
                raise FrameError("ATS cut short")
            ats = data[i : i + ats_len]
            i += ats_len
        targets.append(TargetA(tg, atqa, sak, bytes(uid), bytes(ats)))
    if i != len(data):
        raise FrameError(f"{len(data) - i} bytes after the last target")
    return tuple(targets)


@dataclass(frozen=True)
class Tap:
    """A card that came into the reader's field: delivered once per tap.

    ``t`` is the clock time its UID was read. ``uid_hex`` is how logs show it;
    the network should never see it raw (hash it with a per-gym secret).
    """

    uid: bytes
    t: float
    atqa: int = 0
    sak: int = 0
    reader: str = ""

    @property
    def uid_hex(self) -> str:
        return self.uid.hex()

    @property
    def random_id(self) -> bool:
        """A 4-byte UID starting 0x08 is random (ISO/IEC 14443-3), new at every activation:
        phones show these. It cannot identify an athlete."""
        return _random_id(self.uid)


def _random_id(uid: bytes | None) -> bool:
    return uid is not None and len(uid) == 4 and uid[0] == 0x08


# -- one exchange on the wire ----------------------------------------------------------------------
class _Failed(Exception):
    """An exchange that did not complete; the reason is for the stats and a fault message."""


_WAIT = "wait"  # nothing more to do until the chip is ready
_MOVED = "moved"  # a step was made; the next may be possible at once


@dataclass
class _Exchange:
    command: Command
    params: bytes
    timeout_s: float
    quick: bool  # its answer comes within a millisecond or two: worth a short wait
    read_len: int  # status byte plus the frame bytes to read for the answer
    phase: str = "send"
    sends: int = 0
    nacks: int = 0
    since: float = 0.0


def _answer_len(data_bytes: int) -> int:
    """Bytes to read for an answer with ``data_bytes`` after the TFI: status + frame."""
    return 1 + 5 + 1 + data_bytes + 2


#: the longest InListPassiveTarget answer without ATS: a 10-byte UID (longer ones are NACKed for)
LIST_ANSWER_LEN = _answer_len(1 + 1 + 1 + 2 + 1 + 1 + 10)


@dataclass
class Pn532Stats(ChipStats):
    polls: int = 0
    exchanges: int = 0  # commands completed
    listings: int = 0  # InListPassiveTarget answers
    taps: int = 0
    removals: int = 0
    resends: int = 0  # commands sent again for want of an ACK
    nacks: int = 0  # NACKs sent for a damaged answer
    aborts: int = 0  # ACKs sent to abort a command that took too long
    bad_frames: int = 0
    error_frames: int = 0
    failures: int = 0  # exchanges given up
    recoveries: int = 0


class _Link:
    """Frames over I2C to one PN532: the steps of an exchange, each one bus transfer."""

    def __init__(self, device: I2CDevice, clock: Clock, stats: Pn532Stats):
        self.device = device
        self.clock = clock
        self.stats = stats
        if not hasattr(device.bus, "i2c_rdwr"):
            raise TypeError(
                "the PN532 needs plain I2C reads and writes: give it a bus with "
                "i2c_rdwr (smbus2.SMBus on a Pi, or monitor.sim.SimBus)"
            )

    def write(self, data: bytes) -> None:
        self.device.transfer(self._write, bytes(data))

    def read(self, length: int) -> bytes:
        return self.device.transfer(self._read, length)

    def _write(self, data: bytes) -> None:
        self.device.bus.i2c_rdwr(i2c_msg.write(self.device.address, data))

    def _read(self, length: int) -> bytes:
        msg = i2c_msg.read(self.device.address, length)
        self.device.bus.i2c_rdwr(msg)
        return bytes(msg)

    def step(self, ex: _Exchange):
        """One transfer of ``ex``: returns _WAIT, _MOVED or the answer's data (after its code)."""
        now = self.clock.now()
        if ex.phase == "send":
            self.write(encode_frame(bytes((ex.command,)) + ex.params))
            ex.sends += 1
            ex.phase, ex.since = "ack", self.clock.now()
            return _WAIT  # the ACK takes about a millisecond: reading at once would find nothing
        if ex.phase == "ack":
            raw = self.read(1 + len(ACK_FRAME))
            if raw[0] & STATUS_READY:
                if raw[1:] == ACK_FRAME:
                    ex.phase, ex.since = "answer", now
                    # A quick command's answer is as good as ready; a listing's is tens of ms away.
                    return _MOVED if ex.quick else _WAIT
                self.stats.bad_frames += 1  # a damaged ACK: the command may be damaged too
                return self._resend(ex, "a damaged ACK")
            if now - ex.since > ACK_TIMEOUT_S:
                return self._resend(ex, "no ACK")
            return _WAIT
        raw = self.read(ex.read_len)
        if not raw[0] & STATUS_READY:
            if now - ex.since > ex.timeout_s:
                self.abort()
                raise _Failed(f"no answer to {ex.command.name} in {ex.timeout_s:g} s")
            return _WAIT
        try:
            frame = parse_frame(raw[1:])
        except TruncatedFrame as err:
            longer = ex.read_len < err.needed + 1 <= MAX_FRAME_DATA + 10
            if longer:
                ex.read_len = (
                    err.needed + 1
                )  # longer than expected (an ATS): ask for it again, whole
            return self._nack(ex, str(err), damaged=not longer)
        except FrameError as err:
            return self._nack(ex, str(err))
        if frame.kind == "error":
            self.stats.error_frames += 1
            raise _Failed(f"{ex.command.name} refused with a syntax error frame")
        if frame.kind != "info" or frame.tfi != PN532_TO_HOST or not frame.data:
            return self._nack(ex, f"a {frame.kind} frame where an answer was due")
        if frame.data[0] != ex.command.response:
            self.stats.bad_frames += 1
            self.abort()
            raise _Failed(f"answer code {frame.data[0]:02X} to {ex.command.name}: out of step")
        return frame.data[1:]

    def _resend(self, ex: _Exchange, why: str):
        if ex.sends >= MAX_SENDS:
            raise _Failed(f"{ex.command.name} sent {ex.sends} times, {why} each time")
        self.stats.resends += 1
        ex.phase = "send"
        return _MOVED

    def _nack(self, ex: _Exchange, why: str, damaged: bool = True):
        """Ask for the answer again; every NACK counts toward the bound, cut short or damaged."""
        if damaged:
            self.stats.bad_frames += 1
        if ex.nacks >= MAX_NACKS:
            self.abort()
            raise _Failed(f"answer to {ex.command.name} damaged {ex.nacks + 1} times ({why})")
        ex.nacks += 1
        self.stats.nacks += 1
        self.write(NACK_FRAME)
        ex.since = self.clock.now()
        return _MOVED

    def abort(self) -> None:
        """An ACK from the host aborts the command in progress (UM0701-02 6.2.1.3)."""
        self.stats.aborts += 1
        self.write(ACK_FRAME)

    def call(self, ex: _Exchange) -> bytes:
        """Run ``ex`` to the end, waiting on the clock; bounded by its timeouts."""
        while True:
            result = self.step(ex)
            if isinstance(result, bytes):
                self.stats.exchanges += 1
                return result
            if result is _WAIT:
                self.clock.sleep(READY_POLL_S)


def _exchange(
    command: Command,
    params: bytes = b"",
    *,
    answer_bytes: int = 1,
    timeout_s: float = QUICK_TIMEOUT_S,
    quick: bool = True,
) -> _Exchange:
    return _Exchange(command, bytes(params), timeout_s, quick, _answer_len(1 + answer_bytes))


def read_firmware(
    bus: Bus, address: int = PN532_ADDRESS, *, clock: Clock | None = None
) -> FirmwareVersion | None:
    """GetFirmwareVersion and nothing else, for ``gym-monitor probe``; None if no PN532 answers.

    The PN532 has no ID register: this is how it says who it is. It leaves
    the chip's configuration alone and takes a few milliseconds (at most
    about half a second when something else sits at the address).
    """
    clock = clock or RealClock()
    device = I2CDevice(
        bus,
        address,
        RegisterMap(),
        name=f"PN532 at 0x{address:02X}",
        clock=clock,
        retry=RetryPolicy(attempts=2),
    )
    try:
        link = _Link(device, clock, Pn532Stats())
        return parse_firmware(link.call(_exchange(Command.GET_FIRMWARE_VERSION, answer_bytes=4)))
    except (OSError, FrameError, _Failed, TypeError):
        return None


class Pn532(Chip):
    """A PN532 NFC reader on I2C; see the module docstring.

    ``poll_interval_s`` is how often the field is listed for a card (a tap is
    delivered within about that plus one station poll); ``max_retries`` the
    activation attempts after the first in each listing (RFConfiguration
    MxRtyPassiveActivation); ``absent_polls`` the listings in a row without
    the card that make it gone. ``stuck_after_s`` and ``retry_s`` set how
    soon a silent chip is reported and how often it is tried again.

        with Pn532(smbus2.SMBus(1)) as reader:
            while True:
                tap = reader.poll()
                ...

    The constructor identifies and configures the chip (a few milliseconds;
    :class:`~monitor.errors.SensorNotFound` with what to check if no PN532
    answers). ``poll`` then never waits more than a few milliseconds.
    """

    CHIP = "PN532"
    ADDRESSES = (PN532_ADDRESS,)
    #: GetFirmwareVersion's IC byte: it has no ID register
    IDENTITIES = MappingProxyType({PN532_IC: "PN532"})

    stats: Pn532Stats

    def __init__(
        self,
        bus: Bus,
        address: int = PN532_ADDRESS,
        *,
        clock: Clock | None = None,
        poll_interval_s: float = 0.2,
        max_retries: int = 1,
        absent_polls: int = 2,
        list_timeout_s: float = 0.25,
        stuck_after_s: float = 1.0,
        retry_s: float = 1.0,
        name: str | None = None,
        bus_name: str | int | None = None,
        retry: RetryPolicy | None = None,
    ):
        if not poll_interval_s > 0:
            raise ValueError(f"poll_interval_s must be positive, not {poll_interval_s!r}")
        if not (isinstance(max_retries, int) and 0 <= max_retries <= 0xFE):
            raise ValueError(
                "max_retries must be 0..254 (255 would wait for a card forever), "
                f"not {max_retries!r}"
            )
        if not (isinstance(absent_polls, int) and absent_polls >= 1):
            raise ValueError(
                f"absent_polls must be a whole number of at least 1, not {absent_polls!r}"
            )
        super().__init__(bus, address, clock=clock, retry=retry, name=name, bus_name=bus_name)
        self.poll_interval_s = float(poll_interval_s)
        self.max_retries = max_retries
        self.absent_polls = absent_polls
        self.list_timeout_s = float(list_timeout_s)
        self.stuck_after_s = float(stuck_after_s)
        self.retry_s = float(retry_s)
        self.stats = Pn532Stats()
        self._link = _Link(self.device, self.clock, self.stats)
        self.firmware: FirmwareVersion | None = None
        #: the UID of the card in the field now, None when the field is empty
        self.present: bytes | None = None
        self._misses = 0
        self._list_read_len = LIST_ANSWER_LEN
        self._queue: deque[_Exchange] = deque()
        self._ex: _Exchange | None = None
        self._next_list_at = self.clock.now()
        self._last_ok = self.clock.now()
        self._failure_run = 0
        self._recovering = False
        self._retry_at = 0.0
        try:
            for ex in self._setup():
                self._complete(ex, self._link.call(ex))
        except (SensorGone, _Failed, FrameError) as err:
            raise SensorNotFound(
                f"no PN532 answers as {self.name} ({err}): "
                "check its wiring (SDA, SCL, 3.3 V, GND), "
                "that the board's interface switches select I2C, "
                "that `i2cdetect -y 1` shows 24, and the bus number",
                sensor=self.name,
                address=address,
            ) from err
        self._healthy = True
        self._last_ok = self.clock.now()

    @classmethod
    def read_identity(cls, bus: Any, address: int) -> tuple[int, str] | None:
        """GetFirmwareVersion, which names the chip (see :func:`read_firmware`)."""
        # A simulated bus carries the simulated chips' clock; a real one is read in real time.
        firmware = read_firmware(bus, address, clock=getattr(bus, "clock", None))
        if firmware is None or not cls.part(firmware.ic):
            return None
        return firmware.ic, str(firmware)

    # -- public ------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        """False from a fault until the chip has been identified and configured again."""
        return self._healthy and not self._recovering

    def poll(self) -> Tap | None:
        """Advance the conversation with the chip; a :class:`Tap` when a card has just arrived.

        Never blocks for more than a few milliseconds. Raises a
        :class:`~monitor.errors.SensorError` when the chip is gone or stuck;
        later calls try to bring it back every ``retry_s``.
        """
        self.stats.polls += 1
        if not self._healthy and self.clock.now() < self._retry_at:
            return None
        return self._guarded(self._advance)

    read = poll  # the name the station's sensor slots call

    def _power_down(self) -> None:
        """Abort a command in progress and switch the RF field off."""
        try:
            if self._ex is not None and self._ex.phase != "send":
                self._link.abort()
            self._ex = None
            self._queue.clear()
            self._link.call(self._field_off())
        except (_Failed, FrameError):
            pass  # a reader that cannot finish the exchange is as off as it will get

    # -- the exchanges ----------------------------------------------------------
    def _setup(self) -> list[_Exchange]:
        return [_exchange(Command.GET_FIRMWARE_VERSION, answer_bytes=4), *self._configure()]

    def _configure(self) -> list[_Exchange]:
        # Normal mode (no SAM); the timeout byte only matters in virtual card mode;
        # 0x01 lets the PN532 drive its IRQ line, which costs nothing when it is not wired.
        sam = _exchange(Command.SAM_CONFIGURATION, bytes((SamMode.NORMAL, 0x14, 0x01)))
        retries = _exchange(
            Command.RF_CONFIGURATION, bytes((RfItem.MAX_RETRIES, 0xFF, 0x01, self.max_retries))
        )
        return [sam, retries]

    def _field_off(self) -> _Exchange:
        return _exchange(Command.RF_CONFIGURATION, bytes((RfItem.FIELD, 0x00)))

    def _listing(self) -> _Exchange:
        return _Exchange(
            Command.IN_LIST_PASSIVE_TARGET,
            bytes((1, BRTY_106_TYPE_A)),
            self.list_timeout_s,
            quick=False,
            read_len=self._list_read_len,
        )

    def _recover(self) -> None:
        # Not blocking: identify and configure as the next exchanges, done by later polls.
        self._recovering = True
        self._ex = None
        self._queue = deque(self._setup())

    def _after_fault(self) -> None:
        self._ex = None
        self._queue.clear()
        self._retry_at = self.clock.now() + self.retry_s

    def _next(self) -> _Exchange | None:
        if self._queue:
            return self._queue.popleft()
        now = self.clock.now()
        if now + DUE_SLACK_S >= self._next_list_at:
            self._next_list_at = max(self._next_list_at + self.poll_interval_s, now)
            return self._listing()
        return None

    def _advance(self) -> Tap | None:
        tap = None
        waited = 0.0
        for _ in range(MAX_STEPS):
            if self._ex is None:
                self._ex = self._next()
                if self._ex is None:
                    break
            ex = self._ex
            try:
                result = self._link.step(ex)
            except _Failed as err:
                self._ex = None
                self._failed(err)
                break
            if result is _MOVED:
                continue
            if result is _WAIT:
                # An ACK, a quick command's answer and an answer NACKed for
                # come within a millisecond.
                if (ex.phase == "ack" or ex.quick or ex.nacks) and waited < SHORT_WAIT_S:
                    self.clock.sleep(READY_POLL_S)
                    waited += READY_POLL_S
                    continue
                break
            self._ex = None
            self.stats.exchanges += 1
            self._last_ok = self.clock.now()
            self._failure_run = 0
            tap = self._complete(ex, result) or tap
        return tap

    def _failed(self, err: _Failed) -> None:
        self.stats.failures += 1
        self._failure_run += 1
        silent = self.clock.now() - self._last_ok
        # Two failures in a row, so that one lost answer after a long pause in polling is no fault.
        if silent > self.stuck_after_s and self._failure_run >= 2:
            raise SensorStuck(
                f"{self.name} has completed no command in {silent:.1f} s ({err}): "
                "power-cycle it, and check its supply and the I2C pull-ups",
                sensor=self.name,
                address=self.address,
            ) from err
        # A chip that reset itself forgets SAMConfiguration and MaxRetries (and then waits
        # for a card forever): configure it again before the next listing.
        if not self._queue:
            self._queue.extend(self._configure())

    def _complete(self, ex: _Exchange, data: bytes) -> Tap | None:
        if ex.command is Command.GET_FIRMWARE_VERSION:
            firmware = parse_firmware(data)
            if firmware.ic != PN532_IC:
                raise SensorNotFound(
                    f"{self.name}: GetFirmwareVersion says IC 0x{firmware.ic:02X}, not a "
                    "PN532 (0x32): check the address and the chip",
                    sensor=self.name,
                    address=self.address,
                )
            self.firmware = firmware
            return None
        if (
            ex.command is Command.RF_CONFIGURATION
            and ex.params[0] == RfItem.MAX_RETRIES
            and self._recovering
        ):
            self._recovering = False
            self.stats.recoveries += 1
            return None
        if ex.command is Command.IN_LIST_PASSIVE_TARGET:
            self.stats.listings += 1
            # A card with a long answer (an ATS) is likely listed again: read that much from now on.
            self._list_read_len = max(self._list_read_len, ex.read_len)
            self._queue.append(self._field_off())
            try:
                targets = parse_targets_a(data)
            except FrameError:
                self.stats.bad_frames += 1
                return None  # a listing that makes no sense tells nothing about the field
            return self._seen(targets[0] if targets else None)
        return None

    def _seen(self, target: TargetA | None) -> Tap | None:
        if target is None:
            if self.present is not None:
                self._misses += 1
                if self._misses >= self.absent_polls:
                    self.present = None
                    self._misses = 0
                    self.stats.removals += 1
            return None
        self._misses = 0
        same = target.uid == self.present or (_random_id(target.uid) and _random_id(self.present))
        self.present = target.uid
        if same:
            return None
        self.stats.taps += 1
        return Tap(target.uid, self.clock.now(), target.atqa, target.sak, self.name)
