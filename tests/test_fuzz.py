"""Fuzzing everything that comes from outside: config, MQTT commands, sensor bytes, signals.

Each target is a small *oracle* (``check_*`` in tests/support/fuzz.py, which says the
properties): feed it one input and it asserts the one property that input must satisfy.
Hypothesis drives the oracles here, a few hundred examples each; bench/bench_fuzz.py drives
the same oracles with tens of thousands of seeded random inputs.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import load
from monitor.errors import ConfigError
from monitor.units import G
from tests.support.fuzz import (
    BASE,
    EXAMPLE_CONFIG,
    KNOWN,
    CommandRig,
    ExceptionLog,
    check_analyze,
    check_command,
    check_config_bytes,
    check_imu_garbage,
    check_scale,
    check_stream,
    toml_document,
)
from tests.support.mosquitto import find_mosquitto, find_mosquitto_passwd

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# =============================================================================== config


scalars = (
    st.integers(-(2**63), 2**63 - 1)
    | st.integers(-300, 7000)
    | st.booleans()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([math.nan, math.inf, -math.inf])
    | st.sampled_from([0.0, 1.0, 250.0, 833.0, 0x2A, 0x68])
    | st.text(max_size=12)
    | st.sampled_from(["mpu6050", "lsm6ds", "nau7802", "limb", "body", "v5", "rest"])
)
# Mostly scalars: a value of the wrong shape is refused at once, so it hides what else is wrong.
toml_values = (
    scalars
    | scalars
    | scalars
    | st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=6,
    )
)


@st.composite
def toml_documents(draw) -> dict:
    """Documents shaped like monitor.toml: usually the valid example with one to three keys
    changed (so an odd value is not hidden behind an earlier mistake), sometimes from scratch."""
    doc = copy.deepcopy(BASE) if draw(st.integers(0, 3)) else {}
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from([*KNOWN, "x"]))
        if section == "imu":
            tables = doc.setdefault("imu", [{"name": "wrist"}])
            table = tables[draw(st.integers(0, len(tables) - 1))] if tables else {}
        else:
            table = doc.setdefault(section, {})
            if not isinstance(table, dict):
                continue
        key = draw(
            st.sampled_from([*KNOWN.get(section, ["y"]), draw(st.text(min_size=1, max_size=6))])
        )
        if draw(st.integers(0, 5)) == 0:
            table.pop(key, None)
        else:
            table[key] = draw(toml_values)
    return doc


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config") / "monitor.toml"


@FUZZ
@given(data=st.binary(max_size=600))
def test_any_bytes_in_the_config_file_give_a_config_or_a_config_error(config_file, data):
    check_config_bytes(config_file, data)


@FUZZ
@given(doc=toml_documents())
def test_any_toml_document_gives_a_config_or_a_config_error(config_file, doc):
    check_config_bytes(config_file, toml_document(doc).encode("utf-8"))


@FUZZ
@given(
    cuts=st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 40), st.binary(max_size=8)),
        min_size=1,
        max_size=4,
    )
)
def test_the_example_config_damaged_anywhere_gives_a_config_or_a_config_error(config_file, cuts):
    data = bytearray(EXAMPLE_CONFIG.read_bytes())
    for at, length, insert in cuts:  # splice: delete `length` bytes at `at`, insert `insert`
        at %= len(data) + 1
        data[at : at + length] = insert
    check_config_bytes(config_file, bytes(data))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
def test_non_finite_numbers_are_refused_with_the_key(config_file, value):
    # A NaN threshold passes every < and > check, then never lets the alert trip.
    config_file.write_text(f"[alerts]\nhigh_ratio = {value}\n")
    with pytest.raises(ConfigError, match=r"alerts\.high_ratio: must be a finite number"):
        load(config_file)


# =============================================================================== commands


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    if find_mosquitto() is None or find_mosquitto_passwd() is None:
        pytest.skip("mosquitto and mosquitto_passwd are needed (Debian: apt install mosquitto)")
    rig = CommandRig(tmp_path_factory.mktemp("fuzz-commands"))
    rig.exceptions = ExceptionLog()
    logging.getLogger("monitor").addHandler(rig.exceptions)
    yield rig
    logging.getLogger("monitor").removeHandler(rig.exceptions)
    rig.close()


COMMAND_NAMES = ("tare", "calibrate", "session", "weigh_in", "ack")
#: one topic level that Mosquitto accepts: no separators or wildcards, no control or unassigned
#: characters
topic_levels = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Cn"), exclude_characters="/+#"),
    min_size=1,
    max_size=20,
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=70)
    | st.sampled_from(["start", "stop", "pre", "post", "A12", "display"])
)
near_commands = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 1, 1, 2, "1", 1.0, True])},
    optional={
        "mass_g": json_scalars | st.floats(0, 6e5),
        "action": json_scalars,
        "phase": json_scalars,
        "athlete": json_scalars,
        "id": json_scalars,
        "by": json_scalars,
        "request_id": json_scalars,
        "extra": json_scalars,
    },
)
payloads = (
    st.binary(max_size=200)
    | near_commands.map(lambda d: json.dumps(d).encode())
    | st.binary(min_size=4090, max_size=4200)
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(COMMAND_NAMES) | topic_levels, payload=payloads)
def test_any_command_gets_one_reply_and_the_station_keeps_going(rig, name, payload):
    check_command(rig, name, payload)


def test_good_commands_are_carried_out(rig):
    # The fuzzing above must reach the station too: these succeed.
    for name, body in (
        ("session", {"v": 1, "action": "start", "request_id": "r1"}),
        ("tare", {"v": 1}),
    ):
        _, reply = rig.send(name, json.dumps(body).encode())
        assert reply["ok"] is True, reply
    assert rig.runner.station.session.active


# =============================================================================== sensor bytes


register_junk = st.dictionaries(st.integers(0, 255), st.integers(0, 255), max_size=6)


@FUZZ
@given(
    variant=st.sampled_from(["MPU-6050", "MPU-6500"]),
    range_g=st.sampled_from([2, 4, 8, 16]),
    fifo=st.binary(max_size=1100),
    regs=register_junk,
)
def test_mpu6050_garbage_gives_a_sensor_error_or_real_samples(variant, range_g, fifo, regs):
    check_imu_garbage("mpu6050", variant, range_g, fifo, regs)


@FUZZ
@given(
    variant=st.sampled_from(["LSM6DSO", "LSM6DS3", "LSM6DSL"]),
    range_g=st.sampled_from([2, 4, 8, 16]),
    fifo=st.binary(max_size=700),
    regs=register_junk,
)
def test_lsm6ds_garbage_gives_a_sensor_error_or_real_samples(variant, range_g, fifo, regs):
    check_imu_garbage("lsm6ds", variant, range_g, fifo, regs)


@FUZZ
@given(
    masses=st.lists(
        st.floats(-1e7, 1e7) | st.sampled_from([-1e15, 1e15, 0.0, 2e5]), min_size=1, max_size=30
    ),
    step_s=st.floats(0.01, 2.0),
    regs=st.dictionaries(st.integers(0, 0x1F), st.integers(0, 255), max_size=3),
)
def test_a_scale_that_jumps_wildly_gives_a_sensor_error_or_adc_counts(masses, step_s, regs):
    check_scale(masses, step_s, regs)


# =============================================================================== analysis

finite = st.floats(allow_nan=False, allow_infinity=False)
rates = st.sampled_from([50.0, 100.0, 200.0, 208.0, 250.0, 1000.0])


@st.composite
def windows(draw):
    fs = draw(rates)
    n = draw(st.integers(0, int(3 * fs)))
    fill = draw(st.sampled_from(["constant", "random", "spikes"]))
    if fill == "constant":
        return np.full((n, 3), draw(finite)), fs
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-300, 1e-3, 1.0, G, 1e3, 1e150, 1e300]))
    accel = rng.standard_normal((n, 3)) * scale
    if fill == "spikes" and n:
        accel[rng.integers(0, n, size=3)] = draw(finite)
    return np.clip(accel, -1.7e308, 1.7e308), fs


@FUZZ
@given(window=windows())
def test_analyze_on_garbage_gives_metrics_or_a_value_error(window):
    check_analyze(*window)


@st.composite
def streams(draw):
    fs = draw(rates)
    blocks, t = [], draw(st.floats(-1e6, 1e6))
    for _ in range(draw(st.integers(1, 8))):
        n = draw(st.integers(0, int(fs)))
        jump = draw(st.sampled_from([0.0, 0.0, 0.02, 1.0, -0.5, 100.0]))
        jitter = draw(st.sampled_from([0.0, 1e-4, 0.3]))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        ts = t + jump + (np.arange(1, n + 1) + rng.uniform(-jitter, jitter, n)) / fs
        scale = draw(st.sampled_from([0.0, 1.0, G, 1e6, 1e200]))
        accel = np.clip(rng.standard_normal((n, 3)) * scale + [0, 0, G], -1.7e308, 1.7e308)
        blocks.append((ts, accel, draw(st.integers(0, 10_000))))
        t = float(ts[-1]) if n else t + jump
    return fs, blocks


@FUZZ
@given(stream=streams())
def test_streaming_analysis_takes_any_blocks(stream):
    check_stream(*stream)
