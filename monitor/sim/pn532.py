"""A PN532 NFC reader at frame level, with tags coming and going, for tests and the demo.

It speaks the PN532's I2C protocol as the User Manual (UM0701-02) gives it,
the way the real drivers see it: a write is a frame; a read starts with the
status byte (bit 0: a frame is waiting) and goes on with the waiting frame,
padded with zeros if the host reads more. A read that takes only part of a
frame leaves it waiting (Adafruit's driver reads the status byte alone, then
status and frame); a NACK from the host sends the last answer again; an ACK
from the host aborts the command in progress::

    sim = Pn532Sim(tags=[(2.0, 3.0, bytes.fromhex("04a2243a5e5b80"))], clock=clock)
    bus.attach(0x24, sim)           # the tag is in the field from t = 2 s to 3 s

``tags`` is a list of ``(t_on, t_off, uid or Tag)``, or any object with
``tag_at(t)`` (a :class:`Tag` or None) or ``uid_at(t)`` (bytes or None).

What it models besides the frames:

* commands: GetFirmwareVersion (PN532 v1.6), SAMConfiguration, RFConfiguration
  (RF field, MaxRetries and the rest accepted), InListPassiveTarget (106 kbps
  type A, the answer the UM tables: Tg, SENS_RES, SEL_RES, NFCID1, ATS),
  InRelease, GetGeneralStatus, Diagnose (communication test); anything else,
  or bad parameters, gets the error frame;
* listing: each activation attempt sends a REQA; a card answers and is
  selected through one cascade level per 4 bytes of its UID; with no card an
  attempt times out. MxRtyPassiveActivation + 1 attempts are made (0xFF, the
  reset value: until a card comes). A card selected by an earlier listing
  and still powered is ACTIVE and does not answer a REQA; it returns to IDLE
  (ISO/IEC 14443-3), so the next attempt finds it; switching the RF field off
  powers it down;
* a reset (``bus.brownout``) restores the power-on state: MaxRetries 0xFF, no SAMConfiguration.

Timing (modelled, not measured on a chip): ACK ``ACK_DELAY_S`` after a command,
quick commands ``EXEC_S``, ``ATTEMPT_S`` per empty activation attempt, and
``ACTIVATION_S`` plus ``CASCADE_S`` per cascade level to select a card.

Faults, each for the next ``count`` occasions::

    sim.corrupt_commands(1)   # line noise: the next command arrives damaged and is ignored (no ACK)
    sim.garble_acks(1)        # the next ACK goes out damaged
    sim.garble_answers(1)     # the next answer goes out with a wrong checksum
    sim.lose_answers(1)       # the next command is ACKed but never answered
    sim.remove_mid_read(0.5)  # the card leaves during the next selection, for 0.5 s
    sim.hang(2.0)             # not ready for 2 s: commands ignored, status 0
    bus.vanish(0x24, 2.0)     # the bus NACKs the address (SimBus)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from ..i2c.pn532 import (
    ACK_FRAME,
    BRTY_106_TYPE_A,
    DEFAULT_MAX_RETRIES,
    ERROR_TFI,
    PN532_TO_HOST,
    RF_FIELD_ON,
    SAK_ISO14443_4,
    UID_LENGTHS,
    Command,
    FrameError,
    RfItem,
    encode_frame,
    parse_frame,
)
from .chip import SimChip

ACK_DELAY_S = 0.0005
EXEC_S = 0.001
ATTEMPT_S = 0.005
ACTIVATION_S = 0.002
CASCADE_S = 0.0015
RATS_S = 0.002  # the ATS of an ISO/IEC 14443-4 card
FIRMWARE = (0x32, 0x01, 0x06, 0x07)  # PN532, v1.6, ISO 14443A/B and ISO 18092
ERROR_FRAME = encode_frame(b"", tfi=ERROR_TFI)


@dataclass(frozen=True)
class Tag:
    """A type A card: its UID and what it answers to REQA and SELECT.

    Defaults by UID length: 4 bytes a MIFARE Classic 1K (ATQA 0x0004, SAK 0x08),
    7 bytes an NTAG/Ultralight (0x0044, 0x00), 10 bytes ATQA 0x0084.
    """

    uid: bytes
    atqa: int | None = None
    sak: int | None = None
    ats: bytes = b""

    def __post_init__(self) -> None:
        uid = bytes(self.uid)
        if len(uid) not in UID_LENGTHS:
            raise ValueError(f"a type A UID has 4, 7 or 10 bytes, not {len(uid)}")
        object.__setattr__(self, "uid", uid)
        if self.atqa is None:
            object.__setattr__(self, "atqa", {4: 0x0004, 7: 0x0044, 10: 0x0084}[len(uid)])
        if self.sak is None:
            object.__setattr__(
                self, "sak", SAK_ISO14443_4 if self.ats else (0x08 if len(uid) == 4 else 0x00)
            )

    @property
    def cascade_levels(self) -> int:
        return {4: 1, 7: 2, 10: 3}[len(self.uid)]


def as_tag(value: Any) -> Tag | None:
    if value is None or isinstance(value, Tag):
        return value
    return Tag(bytes(value))


class TagSchedule:
    """Cards in the field by time: ``[(t_on, t_off, uid or Tag), ...]``, repeating every
    ``period`` seconds when given (a demo that runs for as long as anyone watches)."""

    def __init__(self, taps: Iterable[tuple[float, float, Any]], period: float | None = None):
        self.taps = sorted((float(a), float(b), as_tag(u)) for a, b, u in taps)
        for t_on, t_off, _ in self.taps:
            if not t_off > t_on:
                raise ValueError(f"a tap must end after it starts, not {t_on}..{t_off}")
        self.period = period

    def tag_at(self, t: float) -> Tag | None:
        if self.period:
            t = math.fmod(t, self.period)
        for t_on, t_off, tag in self.taps:
            if t_on <= t < t_off:
                return tag
        return None


class _UidSource:
    def __init__(self, source):
        self.source = source

    def tag_at(self, t: float) -> Tag | None:
        return as_tag(self.source.uid_at(t))


def tag_source(tags: Any):
    if tags is None:
        return TagSchedule(())
    if hasattr(tags, "tag_at"):
        return tags
    if hasattr(tags, "uid_at"):
        return _UidSource(tags)
    return TagSchedule(tags)


@dataclass
class _Job:
    """The command the chip is working on."""

    command: int
    params: bytes
    started: float
    ack_read: float | None = None
    done_at: float | None = None
    answer: bytes | None = None  # the response data after the TFI
    lost: bool = False
    set_up: bool = False
    attempt_t: float = 0.0
    attempts_left: float = 0
    pending: tuple | None = None  # the activation attempt under way: (tag or None, end)


@dataclass
class _Faults:
    corrupt_commands: int = 0
    garble_acks: int = 0
    garble_answers: int = 0
    lose_answers: int = 0
    remove_mid_read: list = field(default_factory=list)  # away_s of each armed removal
    absent_until: float = -math.inf
    hang_until: float = -math.inf


class Pn532Sim(SimChip):
    """See the module docstring. ``firmware`` is GetFirmwareVersion's IC, Ver, Rev, Support."""

    name = "PN532"

    def __init__(
        self,
        tags: Any = None,
        *,
        clock: Clock | None = None,
        firmware: tuple[int, ...] = FIRMWARE,
        log_size: int = 4096,
    ):
        self.tags = tags
        self.firmware = tuple(firmware)
        self.faults = _Faults()
        #: every write from the host as it arrived: (time, bytes)
        self.received: deque[tuple[float, bytes]] = deque(maxlen=log_size)
        #: every command the chip accepted: (time, command code, parameters)
        self.commands: deque[tuple[float, int, bytes]] = deque(maxlen=log_size)
        self.listings = 0
        self.lost_mid_read = 0  # selections a card left half way through
        super().__init__(clock=clock)

    @property
    def tags(self):
        return self._source

    @tags.setter
    def tags(self, tags: Any) -> None:
        self._source = tag_source(tags)

    def power_on_reset(self) -> None:
        super().power_on_reset()
        self.max_retries = list(DEFAULT_MAX_RETRIES)
        self.sam_mode: int | None = None  # None: still in LowVbat mode, as after power-up
        self.field_on = False
        self.active_uid: bytes | None = None  # selected by a listing and powered since
        self._job: _Job | None = None
        self._out: bytes | None = None  # the frame waiting to be read
        self._out_at = 0.0  # ... from this time on
        self._out_is_ack = False
        self._last_answer: bytes | None = None

    # -- faults -------------------------------------------------------------------
    def corrupt_commands(self, count: int = 1) -> None:
        self.faults.corrupt_commands += count

    def garble_acks(self, count: int = 1) -> None:
        self.faults.garble_acks += count

    def garble_answers(self, count: int = 1) -> None:
        self.faults.garble_answers += count

    def lose_answers(self, count: int = 1) -> None:
        self.faults.lose_answers += count

    def remove_mid_read(self, away_s: float = 0.0) -> None:
        """The card in the field leaves during the next selection (after its first cascade level).

        It stays away ``away_s`` seconds; 0: it is back at once, as at the edge of the field.
        """
        self.faults.remove_mid_read.append(float(away_s))

    def hang(self, duration: float, *, reset: bool = False) -> None:
        """Not ready for ``duration`` s: commands are ignored and reads show status 0; then idle
        (and at its power-on state if ``reset``)."""
        now = self.clock.now()
        self.faults.hang_until = now + duration
        self._job, self._out = None, None
        if reset:
            self.power_on_reset()

    def tag_at(self, t: float) -> Tag | None:
        if t < self.faults.absent_until:
            return None
        return self._source.tag_at(t)

    # -- the bus side -------------------------------------------------------------------
    def i2c_write(self, data: bytes) -> None:
        """One I2C write transaction: a frame from the host."""
        now = self.clock.now()
        data = bytes(data)
        self.received.append((now, data))
        if now < self.faults.hang_until:
            return
        self._advance(now)
        if self.faults.corrupt_commands and len(data) > 6:
            self.faults.corrupt_commands -= 1
            data = data[:5] + bytes((data[5] ^ 0x10,)) + data[6:]
        try:
            frame = parse_frame(data)
        except FrameError:
            return  # a damaged or partial frame is ignored: no ACK
        if frame.kind == "ack":
            self._job, self._out = None, None  # abort
            return
        if frame.kind == "nack":
            if self._last_answer is not None and self._job is None:
                self._present(self._garbled(self._last_answer), now + ACK_DELAY_S, ack=False)
            return
        if frame.kind != "info" or frame.tfi != 0xD4 or not frame.data:
            return
        self._job = _Job(frame.data[0], frame.data[1:], now)
        self.commands.append((now, frame.data[0], frame.data[1:]))
        ack = ACK_FRAME
        if self.faults.garble_acks:
            self.faults.garble_acks -= 1
            ack = ACK_FRAME[:4] + b"\xfe" + ACK_FRAME[5:]
        self._present(ack, now + ACK_DELAY_S, ack=True)
        if self.faults.lose_answers:
            self.faults.lose_answers -= 1
            self._job.lost = True

    def i2c_read(self, length: int) -> bytes:
        """One I2C read transaction: the status byte, then the waiting frame if there is one."""
        now = self.clock.now()
        if length <= 0:
            return b""
        if now < self.faults.hang_until:
            return bytes(length)
        self._advance(now)
        if self._out is None or now < self._out_at:
            return bytes(length)
        frame = self._out
        if length - 1 >= len(frame):  # read whole: the chip is done with it
            self._out = None
            if self._out_is_ack and self._job is not None:
                self._job.ack_read = now
                self._advance(now)
            elif not self._out_is_ack:
                self._job = None
        return (bytes((0x01,)) + frame + bytes(max(0, length - 1 - len(frame))))[:length]

    def _present(self, frame: bytes, at: float, *, ack: bool) -> None:
        self._out, self._out_at, self._out_is_ack = frame, at, ack

    # SimBus's register-style calls, as the chip sees them: a write is a (partial) frame
    def read(self, register: int, length: int) -> bytes:
        self.i2c_write(bytes((register & 0xFF,)))
        return self.i2c_read(length)

    def read_current(self, length: int) -> bytes:
        return self.i2c_read(length)

    def write(self, register: int, data: bytes) -> None:
        self.i2c_write(bytes((register & 0xFF,)) + bytes(data))

    # -- the chip at work ------------------------------------------------------------------
    def _advance(self, now: float) -> None:
        job = self._job
        if job is None or job.lost:
            return
        if job.answer is None:
            self._run(job, now)
        if (
            job.answer is not None
            and job.done_at is not None
            and job.ack_read is not None
            and self._out is None
        ):
            frame = (
                encode_frame(job.answer, tfi=PN532_TO_HOST)
                if job.answer != b"\x7f"
                else ERROR_FRAME
            )
            self._last_answer = frame
            self._present(self._garbled(frame), max(job.done_at, job.ack_read), ack=False)

    def _garbled(self, frame: bytes) -> bytes:
        """The answer as it goes out: with a wrong data checksum while garble_answers lasts."""
        if not self.faults.garble_answers:
            return frame
        self.faults.garble_answers -= 1
        return frame[:-2] + bytes(((frame[-2] + 1) & 0xFF,)) + frame[-1:]

    def _run(self, job: _Job, now: float) -> None:
        if job.command == Command.IN_LIST_PASSIVE_TARGET:
            self._list(job, now)
            return
        answer = self._execute(job.command, job.params)
        job.done_at = job.started + EXEC_S
        job.answer = answer

    def _execute(self, command: int, p: bytes) -> bytes:
        """The answer (after the TFI) to a quick command; b"\\x7f" for the error frame."""
        error = b"\x7f"
        reply = bytes((command + 1,))
        if command == Command.GET_FIRMWARE_VERSION and not p:
            return reply + bytes(self.firmware)
        if command == Command.SAM_CONFIGURATION:
            if not 1 <= len(p) <= 3 or p[0] not in (1, 2, 3, 4):
                return error
            self.sam_mode = p[0]
            return reply
        if command == Command.RF_CONFIGURATION:
            if not p:
                return error
            item, values = p[0], p[1:]
            sizes: dict[int, int] = {
                RfItem.FIELD: 1,
                RfItem.TIMINGS: 3,
                RfItem.MAX_RETRY_COM: 1,
                RfItem.MAX_RETRIES: 3,
            }
            if item in sizes and len(values) != sizes[item]:
                return error
            if item == RfItem.FIELD:
                self._set_field(bool(values[0] & RF_FIELD_ON))
            elif item == RfItem.MAX_RETRIES:
                self.max_retries = list(values)
            return reply
        if command == Command.IN_RELEASE and len(p) == 1:
            self.active_uid = None
            return reply + b"\x00"
        if command == Command.GET_GENERAL_STATUS and not p:
            status = bytes((0x00, 1 if self.field_on else 0, 1 if self.active_uid else 0))
            if self.active_uid:
                status += bytes((0x01, 0x00, 0x00, 0x10))  # Tg 1, 106 kbps both ways, type A
            return reply + status + b"\x00"
        if command == Command.DIAGNOSE and p[:1] == b"\x00":
            return reply + p[1:]  # communication line test: the data comes back
        return error

    def _set_field(self, on: bool) -> None:
        if not on:
            self.active_uid = None  # a card without a field loses power and its state
        self.field_on = on

    def _list(self, job: _Job, now: float) -> None:
        p = job.params
        if len(p) < 2 or p[0] not in (1, 2) or p[1] > 4:
            job.answer, job.done_at = b"\x7f", job.started + EXEC_S
            return
        if not job.set_up:
            job.set_up = True
            # Set the attempts up once: the field goes on, then MxRtyPassiveActivation + 1 tries.
            job.attempt_t = job.started + EXEC_S
            retries = self.max_retries[2]
            job.attempts_left = math.inf if retries == 0xFF else retries + 1
            if p[1] != BRTY_106_TYPE_A:
                job.attempts_left = 0  # only type A cards are simulated
            self._set_field(True)
        while job.attempts_left > 0:
            if job.pending is None:
                if job.attempt_t > now:
                    return
                job.pending = self._attempt(job.attempt_t)  # decided once, at its start
            found, end = job.pending
            if end > now:
                return
            job.pending = None
            job.attempt_t = end
            if found is not None:
                self.listings += 1
                data = (
                    bytes((1, 1))
                    + found.atqa.to_bytes(2, "big")
                    + bytes((found.sak, len(found.uid)))
                    + found.uid
                )
                if found.sak & SAK_ISO14443_4:
                    data += found.ats or b"\x05\x78\x80\x70\x02"
                job.answer, job.done_at = bytes((Command.IN_LIST_PASSIVE_TARGET + 1,)) + data, end
                return
            job.attempts_left -= 1
        self.listings += 1
        job.answer, job.done_at = bytes((Command.IN_LIST_PASSIVE_TARGET + 1, 0)), job.attempt_t

    def _attempt(self, ta: float) -> tuple[Tag | None, float]:
        """One activation attempt starting at ``ta``.

        Returns the card selected (or None) and when the attempt ends.
        """
        tag = self.tag_at(ta)
        if tag is None:
            self.active_uid = None
            return None, ta + ATTEMPT_S
        if tag.uid == self.active_uid:
            self.active_uid = None  # ACTIVE: ignores REQA and falls back to IDLE
            return None, ta + ATTEMPT_S
        duration = (
            ACTIVATION_S
            + CASCADE_S * tag.cascade_levels
            + (RATS_S if (tag.sak or 0) & SAK_ISO14443_4 else 0.0)
        )
        if self.faults.remove_mid_read:
            away = self.faults.remove_mid_read.pop(0)
            left = ta + ACTIVATION_S + CASCADE_S
            self.faults.absent_until = left + away
            self.lost_mid_read += 1
            return None, left + ATTEMPT_S
        end = ta + duration
        if self.tag_at(end) != tag:
            self.lost_mid_read += 1
            return None, end  # it left during anticollision: nothing selected
        self.active_uid = tag.uid
        return tag, end


def taking_turns(
    athletes: int = 3,
    *,
    seed: int = 0,
    turn_s: float = 60.0,
    hold_s: float = 0.6,
    first_s: float = 5.0,
    repeat: bool = True,
) -> TagSchedule:
    """Athletes sharing a station in turns, each with a tag of their own.

    Turn ``k`` belongs to athlete ``k % athletes``: their tag is held on the
    reader for ``hold_s`` at the start of the turn (check-in) and again just
    before it ends (check-out). The first athlete's tag is a 4-byte MIFARE
    Classic, the others 7-byte NTAGs, their UIDs fixed by ``seed``. With
    ``repeat`` the rota starts over after the last athlete's turn.
    """
    import random

    if athletes < 1 or turn_s < 4 * hold_s:
        raise ValueError("need at least one athlete and turns of at least 4 holds")
    rng = random.Random(seed)
    # 0x04 is NXP's manufacturer code;
    # a 4-byte UID must not start 0x08 (random ID) or 0x88 (cascade tag).
    tags = [
        Tag(bytes((0x04,)) + rng.randbytes(6))
        if i
        else Tag(
            bytes((rng.choice([b for b in range(256) if b not in (0x08, 0x88)]),))
            + rng.randbytes(3)
        )
        for i in range(athletes)
    ]
    taps = []
    for k in range(athletes):
        start = first_s + k * turn_s
        taps.append((start, start + hold_s, tags[k]))
        taps.append((start + turn_s - 2 * hold_s, start + turn_s - hold_s, tags[k]))
    return TagSchedule(taps, period=first_s + athletes * turn_s if repeat else None)
