"""ST LSM6DS3 / LSM6DSL / LSM6DSO / LSM6DSOX accelerometer and gyroscope, read by FIFO.

One driver for two FIFO architectures, chosen by WHO_AM_I (0x0F):

* LSM6DSO / LSM6DSOX (0x6C): a *tagged* FIFO of 512 words of 7 bytes, read at
  FIFO_DATA_OUT_TAG (0x78). Each word is one tag byte (TAG_SENSOR in bits 7:3:
  0x01 gyroscope, 0x02 accelerometer; TAG_CNT in bits 2:1 numbers the batch
  time slot) and X, Y, Z as little-endian int16 (0x79..0x7E). Words say what
  they are, so a reader can never lose its place.
* LSM6DS3 / LSM6DS3H (0x69) and LSM6DSL / LSM6DSM / LSM6DS3TR-C (0x6A): an
  *untagged* FIFO of 16-bit words read at FIFO_DATA_OUT_L/H (0x3E/0x3F), in a
  pattern of data sets (gyroscope X, Y, Z first when batched, then
  accelerometer X, Y, Z). FIFO_STATUS3/4 give the pattern position of the next
  word, which is how the reader finds a sample boundary again.

Register names and bit fields follow ST's datasheets (LSM6DSO DS12140, LSM6DS3
DocID026899) as mirrored by ST's lsm6dso-pid driver and Linux's st_lsm6dsx::

    imu = Lsm6ds(bus, address=0x6A, rate_hz=833, range_g=4)
    block = imu.read()          # block.t (N,), block.accel (N, 3) m/s^2

Both read paths pull the unread-word count (FIFO_STATUS1/2) and then every
complete sample in one burst: with IF_INC set the FIFO output address rolls
back to its first register after the last one, so one long read returns word
after word (Linux's st_lsm6dsx relies on the same roll-over when it reads whole
patterns from 0x78 and 0x3E).

Overflow: in continuous mode a full FIFO overwrites its oldest data while new
samples keep coming, and a long burst read of a nearly full FIFO races the
chip. So the driver resets the FIFO (bypass, then continuous) once it is past
:data:`OVERFLOW_FRACTION` of its size or reports an overrun, and counts what it
discarded; :attr:`Lsm6ds.poll_interval` keeps it well below that.

What this driver cannot tell apart: the LSM6DS3 (8 KB FIFO) and LSM6DS3H (4 KB)
both answer 0x69, so 0x69 is treated as having 4 KB, which is safe for both; the
LSM6DSO32 answers 0x6C like the LSM6DSO but has twice the full scale, and is not
supported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

import numpy as np

from ..errors import SensorGone, SensorNotFound, SensorStuck
from ..units import G
from .imu import Imu
from .registers import Field, Flag, Lookup, Register, RegisterMap

# -- values the datasheets table ------------------------------------------------

#: ODR_XL / ODR_G / BDR_XL / BDR_GY / ODR_FIFO code -> Hz (high-performance mode).
ODR_CODES_HZ: dict[int, float] = {
    0: 0.0,
    1: 12.5,
    2: 26.0,
    3: 52.0,
    4: 104.0,
    5: 208.0,
    6: 416.0,
    7: 833.0,
    8: 1666.0,
    9: 3332.0,
    10: 6664.0,
}
ODR = Lookup({hz: code for code, hz in ODR_CODES_HZ.items()})
RATES_HZ: tuple[float, ...] = tuple(hz for hz in ODR_CODES_HZ.values() if hz)

#: FS_XL (CTRL1_XL bits 3:2). Not in order: 2 g = 00, 16 g = 01, 4 g = 10, 8 g = 11.
FS_XL = Lookup({2: 0b00, 16: 0b01, 4: 0b10, 8: 0b11})
#: Linear acceleration sensitivity, mg per LSB, at each full scale.
ACCEL_MG_PER_LSB: dict[int, float] = {2: 0.061, 4: 0.122, 8: 0.244, 16: 0.488}

#: FS_G (CTRL2_G bits 3:2); +-125 dps is the separate FS_125 bit.
FS_G = Lookup({250: 0b00, 500: 0b01, 1000: 0b10, 2000: 0b11})
#: Angular rate sensitivity, mdps per LSB (not full scale / 32768: the datasheet values).
GYRO_MDPS_PER_LSB: dict[int, float] = {125: 4.375, 250: 8.75, 500: 17.5, 1000: 35.0, 2000: 70.0}

#: FIFO_MODE (FIFO_CTRL4 on the DSO, FIFO_CTRL5 on the DS3), the same codes on both.
FIFO_MODE = Lookup(
    {
        "bypass": 0b000,
        "fifo": 0b001,
        "continuous-to-fifo": 0b011,
        "bypass-to-continuous": 0b100,
        "continuous": 0b110,
    }
)

#: DEC_FIFO_XL / DEC_FIFO_GYRO (DS3 FIFO_CTRL3): decimation factor, 0 = not in the FIFO.
DECIMATION = Lookup({0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 8: 5, 16: 6, 32: 7})

#: TAG_SENSOR values of the DSO FIFO this driver uses, and the highest one ST defines.
TAG_GYRO_NC = 0x01
TAG_XL_NC = 0x02
TAG_MAX = 0x19

# -- registers ------------------------------------------------------------------

_COMMON = (
    Register("WHO_AM_I", 0x0F, read_only=True),
    Register(
        "CTRL1_XL",
        0x10,
        fields=(
            Field("odr_xl", 0b1111_0000, ODR),
            Field("fs_xl", 0b0000_1100, FS_XL),
            Field("lpf2_xl_en", 0b0000_0010, Flag()),  # DSO; BW_XL[1:0] on the DS3
        ),
    ),
    Register(
        "CTRL2_G",
        0x11,
        fields=(
            Field("odr_g", 0b1111_0000, ODR),
            Field("fs_g", 0b0000_1100, FS_G),
            Field("fs_125", 0b0000_0010, Flag()),
        ),
    ),
    Register(
        "CTRL3_C",
        0x12,
        reset=0x04,
        fields=(
            Field("boot", 0b1000_0000, Flag()),
            Field("bdu", 0b0100_0000, Flag()),
            Field("h_lactive", 0b0010_0000, Flag()),
            Field("pp_od", 0b0001_0000, Flag()),
            Field("sim", 0b0000_1000, Flag()),
            Field("if_inc", 0b0000_0100, Flag()),
            Field("sw_reset", 0b0000_0001, Flag()),
        ),
    ),
    Register(
        "STATUS_REG",
        0x1E,
        read_only=True,
        fields=(
            Field("tda", 0b0000_0100, Flag()),
            Field("gda", 0b0000_0010, Flag()),
            Field("xlda", 0b0000_0001, Flag()),
        ),
    ),
    Register("OUT_TEMP", 0x20, size=2, byteorder="little", signed=True, read_only=True),
    Register("OUTX_L_G", 0x22, size=6, byteorder="little", read_only=True),
    Register("OUTX_L_XL", 0x28, size=6, byteorder="little", read_only=True),
    Register("FIFO_STATUS1", 0x3A, read_only=True),  # DIFF_FIFO[7:0]
)

#: LSM6DSO / LSM6DSOX: tagged FIFO.
DSO_REGISTERS = RegisterMap(
    Register(
        "FIFO_CTRL1",
        0x07,
        fields=(
            Field("wtm", 0b1111_1111),  # WTM[7:0]; WTM8 is in FIFO_CTRL2
        ),
    ),
    Register(
        "FIFO_CTRL2",
        0x08,
        fields=(
            Field("stop_on_wtm", 0b1000_0000, Flag()),
            Field("fifo_compr_rt_en", 0b0100_0000, Flag()),
            Field("odrchg_en", 0b0001_0000, Flag()),
            Field("uncoptr_rate", 0b0000_0110),
            Field("wtm8", 0b0000_0001),
        ),
    ),
    Register(
        "FIFO_CTRL3",
        0x09,
        fields=(
            Field("bdr_gy", 0b1111_0000, ODR),
            Field("bdr_xl", 0b0000_1111, ODR),
        ),
    ),
    Register(
        "FIFO_CTRL4",
        0x0A,
        fields=(
            Field("dec_ts_batch", 0b1100_0000),
            Field("odr_t_batch", 0b0011_0000),
            Field("fifo_mode", 0b0000_0111, FIFO_MODE),
        ),
    ),
    *_COMMON,
    Register(
        "FIFO_STATUS2",
        0x3B,
        read_only=True,
        fields=(
            Field("fifo_wtm_ia", 0b1000_0000, Flag()),
            Field("fifo_ovr_ia", 0b0100_0000, Flag()),
            Field("fifo_full_ia", 0b0010_0000, Flag()),
            Field("counter_bdr_ia", 0b0001_0000, Flag()),
            Field("over_run_latched", 0b0000_1000, Flag()),
            Field("diff_fifo_h", 0b0000_0011),
        ),
    ),
    Register(
        "FIFO_DATA_OUT_TAG",
        0x78,
        read_only=True,
        fields=(
            Field("tag_sensor", 0b1111_1000),
            Field("tag_cnt", 0b0000_0110),
            Field("tag_parity", 0b0000_0001),
        ),
    ),
    Register("FIFO_DATA_OUT", 0x79, size=6, byteorder="little", read_only=True),
)

#: LSM6DS3 / LSM6DS3H / LSM6DSL family: untagged FIFO of 16-bit words.
DS3_REGISTERS = RegisterMap(
    Register(
        "FIFO_CTRL1",
        0x06,
        fields=(
            Field("fth", 0b1111_1111),  # FTH[7:0]; FTH[11:8] is in FIFO_CTRL2
        ),
    ),
    Register(
        "FIFO_CTRL2",
        0x07,
        fields=(
            Field("timer_pedo_fifo_en", 0b1000_0000, Flag()),
            Field("timer_pedo_fifo_drdy", 0b0100_0000, Flag()),
            Field("fth_h", 0b0000_1111),
        ),
    ),
    Register(
        "FIFO_CTRL3",
        0x08,
        fields=(
            Field("dec_fifo_gyro", 0b0011_1000, DECIMATION),
            Field("dec_fifo_xl", 0b0000_0111, DECIMATION),
        ),
    ),
    Register(
        "FIFO_CTRL5",
        0x0A,
        fields=(
            Field("odr_fifo", 0b0111_1000, ODR),
            Field("fifo_mode", 0b0000_0111, FIFO_MODE),
        ),
    ),
    *_COMMON,
    Register(
        "FIFO_STATUS2",
        0x3B,
        read_only=True,
        fields=(
            Field("wtm", 0b1000_0000, Flag()),
            Field("over_run", 0b0100_0000, Flag()),
            Field("fifo_full", 0b0010_0000, Flag()),
            Field("fifo_empty", 0b0001_0000, Flag()),
            Field("diff_fifo_h", 0b0000_1111),
        ),
    ),
    Register("FIFO_STATUS3", 0x3C, read_only=True),  # FIFO_PATTERN[7:0]
    Register("FIFO_STATUS4", 0x3D, read_only=True),  # FIFO_PATTERN[9:8]
    Register("FIFO_DATA_OUT", 0x3E, size=2, byteorder="little", read_only=True),
)

DS3_FIFO_EMPTY = DS3_REGISTERS["FIFO_STATUS2"].field("fifo_empty").mask

#: What every family shares: enough to identify the chip before its family is known.
COMMON_REGISTERS = RegisterMap(*_COMMON)


@dataclass(frozen=True)
class Family:
    """One FIFO architecture, as the driver needs to know it."""

    name: str
    who_am_i: int
    registers: RegisterMap
    tagged: bool
    fifo_words: int  # FIFO capacity in words
    word_bytes: int  # 7 (tag + X, Y, Z) or 2 (one axis)
    diff_mask: int  # DIFF_FIFO bits of FIFO_STATUS1..2 read as a little-endian word
    wtm_max: int  # largest watermark the WTM / FTH field holds
    mode_register: str  # where FIFO_MODE lives
    gyro_odr_max: float

    @cached_property
    def overrun_mask(self) -> int:
        """FIFO_STATUS2 bits that say data were overwritten."""
        status2 = self.registers["FIFO_STATUS2"]
        if self.tagged:
            return status2.field("fifo_ovr_ia").mask | status2.field("over_run_latched").mask
        return status2.field("over_run").mask

    @property
    def status_bytes(self) -> int:
        # The DS3 family also needs FIFO_STATUS3/4 (the pattern position).
        return 2 if self.tagged else 4

    @property
    def data_out(self) -> str:
        """The register a FIFO burst starts at: the tag byte, or the first byte of the word."""
        return "FIFO_DATA_OUT_TAG" if self.tagged else "FIFO_DATA_OUT"


LSM6DSO = Family(
    "LSM6DSO/LSM6DSOX",
    0x6C,
    DSO_REGISTERS,
    tagged=True,
    fifo_words=512,
    word_bytes=7,
    diff_mask=0x3FF,
    wtm_max=0x1FF,
    mode_register="FIFO_CTRL4",
    gyro_odr_max=6664.0,
)
# 0x69 is the LSM6DS3 (8 KB, 4096 words) or the LSM6DS3H (4 KB): assume the smaller.
LSM6DS3 = Family(
    "LSM6DS3/LSM6DS3H",
    0x69,
    DS3_REGISTERS,
    tagged=False,
    fifo_words=2048,
    word_bytes=2,
    diff_mask=0xFFF,
    wtm_max=0xFFF,
    mode_register="FIFO_CTRL5",
    gyro_odr_max=1666.0,
)
LSM6DSL = Family(
    "LSM6DSL/LSM6DSM/LSM6DS3TR-C",
    0x6A,
    DS3_REGISTERS,
    tagged=False,
    fifo_words=2048,
    word_bytes=2,
    diff_mask=0x7FF,
    wtm_max=0x7FF,
    mode_register="FIFO_CTRL5",
    gyro_odr_max=6664.0,
)
FAMILIES: dict[int, Family] = {f.who_am_i: f for f in (LSM6DSO, LSM6DS3, LSM6DSL)}
#: The most words any 0x69/0x6A chip's FIFO can hold (the LSM6DS3's 8 KB = 4096 words).
LSM6DS3_CHIP_WORDS_MAX = 4096

#: Reset the FIFO once it is this full: a burst of a fuller FIFO races the chip's writes.
OVERFLOW_FRACTION = 0.8
#: SW_RESET clears itself within tens of microseconds; BOOT (trimming reload) in ~10 ms.
RESET_POLL_S = 0.001
RESET_POLLS = 20
BOOT_WAIT_S = 0.015
BOOT_POLL_S = 0.005
BOOT_POLLS = 10
#: How far a requested rate may be from an ODR's name (417 vs 416, 1660 vs 1666 Hz).
RATE_TOLERANCE = 0.05


# -- FIFO decoding (pure functions, so they can be tested on any bytes) ---------------

#: One tagged FIFO word as numpy sees it: the tag byte, then X, Y, Z little-endian int16.
TAGGED_WORD = np.dtype([("tag", "u1"), ("xyz", "<i2", (3,))])
#: Tag bytes whose TAG_SENSOR (bits 7:3) is one ST defines (0x01..0x19),
#: whatever TAG_CNT and parity.
_VALID_TAG_BYTE = np.array([1 <= (b >> 3) <= TAG_MAX for b in range(256)])


def decode_tagged(
    raw: bytes, *, gyro: bool, sensor: str = "LSM6DSO"
) -> tuple[np.ndarray, np.ndarray | None, bytes]:
    """Decode LSM6DSO FIFO words: (accel counts (N, 3), gyro counts or None, leftover bytes).

    Words whose tag is not the accelerometer (or gyroscope) are skipped, the
    way the datasheet intends (temperature, timestamp, configuration-change
    words). With the gyroscope, an accelerometer and a gyroscope word of the
    same batch slot (same TAG_CNT run) make one sample; the words of a last,
    incomplete slot come back as ``leftover`` to be put in front of the next
    read. A tag no ST part defines means the bytes are not FIFO words at all
    (a stuck bus, a reset chip): :class:`~monitor.errors.SensorStuck`.

    >>> word = bytes([TAG_XL_NC << 3, 0x10, 0x00, 0x00, 0x00, 0x00, 0x80])
    >>> decode_tagged(word, gyro=False)[0].tolist()
    [[16.0, 0.0, -32768.0]]
    """
    n = len(raw) // TAGGED_WORD.itemsize
    words = np.frombuffer(raw, dtype=TAGGED_WORD, count=n)
    tag_bytes = words["tag"]
    if not _VALID_TAG_BYTE[tag_bytes].all():
        bad = int(tag_bytes[~_VALID_TAG_BYTE[tag_bytes]][0]) >> 3
        raise SensorStuck(
            f"{sensor}: FIFO word with tag 0x{bad:02X}, which no LSM6DSO sends: "
            "the data is garbage (stuck bus or a chip that reset itself)",
            sensor=sensor,
        )
    tags = tag_bytes >> 3
    is_xl = tags == TAG_XL_NC
    if not gyro:
        if is_xl.all():  # the usual case: nothing but accelerometer words
            return words["xyz"].astype(np.float64), None, b""
        return words["xyz"][is_xl].astype(np.float64), None, b""
    is_g = tags == TAG_GYRO_NC
    kept = words[is_xl | is_g]
    if len(kept) == 0:
        return np.empty((0, 3)), np.empty((0, 3)), b""
    cnt = (kept["tag"] >> 1) & 0b11
    if len(kept) % 2 == 0 and (cnt[0::2] == cnt[1::2]).all():
        # The usual case: every slot is one gyroscope and one accelerometer word.
        pairs = kept.reshape(-1, 2)
        first_xl = (pairs["tag"][:, 0] >> 3) == TAG_XL_NC
        if (first_xl != ((pairs["tag"][:, 1] >> 3) == TAG_XL_NC)).all():
            xyz = pairs["xyz"]
            accel = np.where(first_xl[:, None], xyz[:, 0], xyz[:, 1]).astype(np.float64)
            gyro_counts = np.where(first_xl[:, None], xyz[:, 1], xyz[:, 0]).astype(np.float64)
            return accel, gyro_counts, b""
    # A new batch slot starts wherever TAG_CNT changes between consecutive words.
    slot = np.concatenate(([0], np.cumsum(cnt[1:] != cnt[:-1])))
    xl = (kept["tag"] >> 3) == TAG_XL_NC
    xl_slots, xl_first = np.unique(slot[xl], return_index=True)
    g_slots, g_first = np.unique(slot[~xl], return_index=True)
    _, in_xl, in_g = np.intersect1d(xl_slots, g_slots, assume_unique=True, return_indices=True)
    accel = kept["xyz"][xl][xl_first[in_xl]].astype(np.float64)
    gyro_counts = kept["xyz"][~xl][g_first[in_g]].astype(np.float64)
    last = slot[-1]
    complete_last = len(in_xl) > 0 and xl_slots[in_xl[-1]] == last
    leftover = b"" if complete_last else kept[slot == last].tobytes()
    return accel, gyro_counts, leftover


def decode_untagged(raw: bytes, *, gyro: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode LSM6DS3 FIFO words starting at a pattern boundary: (accel, gyro or None) counts.

    A pattern is gyroscope X, Y, Z then accelerometer X, Y, Z with both
    batched at one rate, or accelerometer X, Y, Z alone.
    """
    per = 6 if gyro else 3
    n = len(raw) // (2 * per)
    words = np.frombuffer(raw, dtype="<i2", count=n * per).reshape(n, per).astype(np.float64)
    if gyro:
        return words[:, 3:6], words[:, 0:3]
    return words, None


# -- the driver -------------------------------------------------------------------------


class Lsm6ds(Imu):
    """An ST LSM6DS3/LSM6DSL/LSM6DSO/LSM6DSOX accelerometer (and gyroscope), read by FIFO.

    ``rate_hz`` must be one of the chip's output data rates: 12.5, 26, 52, 104,
    208, 416, 833, 1666, 3332 or 6664 Hz (833 is the one nearest 1 kHz).
    ``range_g`` is 2, 4, 8 or 16. ``gyro=True`` also batches the gyroscope at the
    same rate, in rad/s, at ``gyro_dps`` full scale (125, 250, 500, 1000 or 2000;
    the LSM6DS3's gyroscope stops at 1666 Hz). The chip is found at 0x6A with
    SA0/SDO tied low, 0x6B with it high::

        imu = Lsm6ds(smbus2.SMBus(1), 0x6A, rate_hz=833, range_g=4)
        while True:
            block = imu.read()
            clock.sleep(imu.poll_interval)

    Filtering is left at the chip's default, a bandwidth that follows the ODR
    (about ODR/2), which leaves the 3-18 Hz tremor band untouched at 104 Hz and
    above. Counts become m/s^2 with the datasheet sensitivities (0.061 mg/LSB
    at 2 g ... 0.488 mg/LSB at 16 g; 8.75 mdps/LSB at 250 dps ...).
    """

    CHIP = "LSM6DS"
    REGISTERS = COMMON_REGISTERS
    ADDRESSES = (0x6A, 0x6B)
    IDENTITIES = MappingProxyType({f.who_am_i: f.name for f in FAMILIES.values()})
    RANGES_G = FS_XL.choices
    RATES = "the lsm6ds runs at " + ", ".join(f"{hz:g}" for hz in RATES_HZ) + " Hz"
    FIFO_BYTES = LSM6DSO.fifo_words * LSM6DSO.word_bytes  # until identified: the DSO's 3.5 KB

    def __init__(
        self,
        bus,
        address: int = ADDRESSES[0],
        *,
        rate_hz: float = 833.0,
        range_g: int = 4,
        gyro: bool = False,
        gyro_dps: int = 500,
        **kwargs,
    ):
        if gyro_dps not in GYRO_MDPS_PER_LSB:
            raise ValueError(
                f"gyro_dps must be one of {tuple(GYRO_MDPS_PER_LSB)}, not {gyro_dps!r}"
            )
        self.gyro_dps = gyro_dps
        self.family: Family = LSM6DSO
        self.variant = "LSM6DS"
        self._found = False
        self._leftover = b""
        super().__init__(bus, address, rate_hz=rate_hz, range_g=range_g, gyro=gyro, **kwargs)

    # -- what Imu asks of a driver ---------------------------------------------------
    @classmethod
    def rate_for(cls, rate_hz: float) -> float | None:
        for hz in RATES_HZ:
            if isinstance(rate_hz, (int, float)) and abs(rate_hz - hz) <= RATE_TOLERANCE * hz:
                return hz
        return None

    def _identify(self) -> None:
        try:
            who = self.device.read("WHO_AM_I")
        except SensorGone as err:
            if self._found:
                raise  # it was here: gone, not misconfigured
            raise SensorNotFound(
                f"{self.name}: nothing answers at 0x{self.address:02X}: check the SA0/SDO strap "
                "(low 0x6A, high 0x6B), the wiring (SDA, SCL, 3V3, GND; CS tied high for I2C) "
                "and the bus number",
                sensor=self.name,
                address=self.address,
            ) from err
        family = FAMILIES.get(who)
        if family is None:
            raise SensorNotFound(
                f"{self.name}: WHO_AM_I is 0x{who:02X}, not an LSM6DS3 (0x69), LSM6DSL (0x6A) or "
                "LSM6DSO/LSM6DSOX (0x6C): check the address (SA0/SDO low 0x6A, high 0x6B; another "
                "chip may answer there), the wiring and that the chip is what the config says",
                sensor=self.name,
                address=self.address,
            )
        if self.gyro_enabled and self.rate_hz > family.gyro_odr_max:
            raise ValueError(
                f"the {family.name} gyroscope runs at most at {family.gyro_odr_max:g} Hz, "
                f"not {self.rate_hz:g} Hz"
            )
        self.family = family
        self.variant = family.name
        self.device.registers = family.registers
        self.FIFO_BYTES = family.fifo_words * family.word_bytes
        self._found = True

    def _configure(self) -> None:
        d, fam = self.device, self.family
        # Sensors and FIFO off first: Linux's st_lsm6dsx flushes the FIFO before a
        # reset because an interrupt asserted during reset can leave the chip in I3C mode.
        d.set("CTRL1_XL", odr_xl=0.0)
        d.set("CTRL2_G", odr_g=0.0)
        d.set(fam.mode_register, **self._fifo_mode("bypass"))
        d.set("CTRL3_C", sw_reset=True, if_inc=True)  # IF_INC stays as it was reset
        self._wait_clear("sw_reset", RESET_POLL_S, RESET_POLLS, first_wait=RESET_POLL_S)
        d.set("CTRL3_C", boot=True, if_inc=True)  # reload the trimming values
        self._wait_clear("boot", BOOT_POLL_S, BOOT_POLLS, first_wait=BOOT_WAIT_S)
        # BDU: a sample's bytes always belong together; IF_INC: bursts walk the registers.
        d.set("CTRL3_C", bdu=True, if_inc=True)
        wtm = self._watermark_words()
        if fam.tagged:
            d.set("FIFO_CTRL1", wtm=wtm & 0xFF)
            d.set("FIFO_CTRL2", wtm8=wtm >> 8)
            d.set(
                "FIFO_CTRL3", bdr_xl=self.rate_hz, bdr_gy=self.rate_hz if self.gyro_enabled else 0.0
            )
        else:
            d.set("FIFO_CTRL1", fth=wtm & 0xFF)
            d.set("FIFO_CTRL2", fth_h=wtm >> 8)
            d.set("FIFO_CTRL3", dec_fifo_xl=1, dec_fifo_gyro=1 if self.gyro_enabled else 0)
        d.set("CTRL1_XL", **self._ctrl1_xl())
        if self.gyro_enabled:
            d.set("CTRL2_G", **self._ctrl2_g())
        self._reset_fifo(bypass_first=False)

    def _configured(self) -> bool:
        # After a brown-out CTRL1_XL and the FIFO mode are back at 0. One burst from
        # FIFO_CTRL4/5 (0x0A) to CTRL1_XL (0x10) also passes WHO_AM_I (0x0F).
        fam = self.family
        regs = fam.registers
        first = regs[fam.mode_register].address
        raw = self.device.read_burst(fam.mode_register, regs["CTRL1_XL"].address - first + 1)
        return (
            raw[0] == regs.value(fam.mode_register, **self._fifo_mode("continuous"))
            and raw[regs["WHO_AM_I"].address - first] == fam.who_am_i
            and raw[-1] == regs.value("CTRL1_XL", **self._ctrl1_xl())
        )

    def _drain(self) -> tuple[np.ndarray, np.ndarray | None, int]:
        fam = self.family
        status = self.device.read_burst("FIFO_STATUS1", fam.status_bytes)
        count = (status[0] | status[1] << 8) & fam.diff_mask
        overrun = bool(status[1] & fam.overrun_mask)
        if fam.tagged:
            sane = count <= fam.fifo_words
            pattern = 0
        else:
            pattern = (status[2] | status[3] << 8) & 0x3FF
            # An empty flag that disagrees with the count, or a pattern position
            # past the pattern, cannot come from a working chip.
            empty = bool(status[1] & DS3_FIFO_EMPTY)
            sane = (
                empty == (count == 0)
                and count <= LSM6DS3_CHIP_WORDS_MAX
                and pattern < self._pattern_words()
            )
        if not sane:
            self._identify()  # a stuck or replaced chip shows up here, not as data
            raise SensorStuck(
                f"{self.name}: FIFO status 0x{bytes(status).hex()} is impossible: "
                "power-cycle the sensor or check its wiring",
                sensor=self.name,
                address=self.address,
            )
        per_sample = self._words_per_sample()
        if overrun or count >= OVERFLOW_FRACTION * fam.fifo_words:
            self._reset_fifo(bypass_first=True)
            accel, gyro = self._empty()
            return accel, gyro, max(count // per_sample, 1)
        if fam.tagged:
            return self._drain_tagged(count)
        return self._drain_untagged(count, pattern)

    def _drain_tagged(self, count: int) -> tuple[np.ndarray, np.ndarray | None, int]:
        raw = self.device.read_burst(self.family.data_out, count * 7) if count else b""
        accel, gyro, self._leftover = decode_tagged(
            self._leftover + raw, gyro=self.gyro_enabled, sensor=self.name
        )
        return accel, gyro, 0

    def _drain_untagged(
        self, count: int, pattern: int
    ) -> tuple[np.ndarray, np.ndarray | None, int]:
        plen = self._pattern_words()
        skip = (plen - pattern) % plen  # words up to the next sample boundary
        n = (count - skip) // plen if count > skip else 0
        if n == 0:
            accel, gyro = self._empty()
            return accel, gyro, 0
        raw = self.device.read_burst(self.family.data_out, 2 * (skip + n * plen))
        accel, gyro = decode_untagged(raw[2 * skip :], gyro=self.gyro_enabled)
        return accel, gyro, 0

    def _accel_scale(self) -> float:
        return ACCEL_MG_PER_LSB[self.range_g] * 1e-3 * G

    def _gyro_scale(self) -> float:
        return math.radians(GYRO_MDPS_PER_LSB[self.gyro_dps] * 1e-3)

    # -- public ---------------------------------------------------------------
    @property
    def datum_bytes(self) -> int:
        """Bytes one sample occupies in the FIFO.

        7 (or 14 with the gyroscope) tagged, 6 (12) untagged.
        """
        return self._words_per_sample() * self.family.word_bytes

    def _power_down(self) -> None:
        """Both sensors to power-down and the FIFO stopped."""
        self.device.set("CTRL1_XL", odr_xl=0.0)
        self.device.set("CTRL2_G", odr_g=0.0)
        self.device.set(self.family.mode_register, **self._fifo_mode("bypass"))

    # -- internals -------------------------------------------------------------
    def _words_per_sample(self) -> int:
        per_sensor = 1 if self.family.tagged else 3
        return per_sensor * (2 if self.gyro_enabled else 1)

    def _pattern_words(self) -> int:
        return 6 if self.gyro_enabled else 3

    def _watermark_words(self) -> int:
        # What one poll interval brings: the WTM flag then means "a read is due".
        words = math.ceil(self.poll_interval * self.rate_hz) * self._words_per_sample()
        return max(1, min(words, self.family.wtm_max))

    def _ctrl1_xl(self) -> dict[str, float | int]:
        return {"odr_xl": self.rate_hz, "fs_xl": self.range_g}

    def _ctrl2_g(self) -> dict[str, float | int | bool]:
        if self.gyro_dps == 125:
            return {"odr_g": self.rate_hz, "fs_125": True}
        return {"odr_g": self.rate_hz, "fs_g": self.gyro_dps}

    def _fifo_mode(self, mode: str) -> dict[str, float | str]:
        """FIFO_MODE (FIFO_CTRL4 on the DSO, FIFO_CTRL5 on the DS3) set to ``mode``."""
        if self.family.tagged:
            return {"fifo_mode": mode}
        # The DS3 FIFO stores at ODR_FIFO, which must not exceed the sensors' ODR: equal it.
        return {"odr_fifo": self.rate_hz if mode != "bypass" else 0.0, "fifo_mode": mode}

    def _reset_fifo(self, *, bypass_first: bool) -> None:
        """Bypass mode empties the FIFO; continuous mode starts it again."""
        reg = self.family.mode_register
        if bypass_first:
            self.device.set(reg, **self._fifo_mode("bypass"))
        self.device.set(reg, **self._fifo_mode("continuous"))
        self._leftover = b""

    def _wait_clear(self, bit: str, poll_s: float, polls: int, *, first_wait: float) -> None:
        """Wait, bounded, for a self-clearing CTRL3_C bit (SW_RESET, BOOT)."""
        self.clock.sleep(first_wait)
        for _ in range(polls):
            if not getattr(self.device.get("CTRL3_C"), bit):
                return
            self.clock.sleep(poll_s)
        raise SensorStuck(
            f"{self.name}: CTRL3_C {bit.upper()} did not clear: the chip is not "
            "responding normally; power-cycle it",
            sensor=self.name,
            address=self.address,
        )

    def _empty(self) -> tuple[np.ndarray, np.ndarray | None]:
        return np.empty((0, 3)), (np.empty((0, 3)) if self.gyro_enabled else None)
