"""The station's TOML file.

Every key documented with its true default, every mistake one clear line.
"""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import Config, load, parse
from monitor.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "monitor.toml"


def test_the_example_file_is_valid_and_its_values_are_the_defaults():
    config = load(EXAMPLE)
    defaults = Config()
    for section in ("analysis", "session", "alerts", "hydration", "mqtt", "gpio"):
        assert getattr(config, section) == getattr(defaults, section), section
    assert config.imus == defaults.imus and config.station.id == defaults.station.id


def test_every_tuning_key_is_documented_in_the_example():
    text = EXAMPLE.read_text()
    defaults = Config()
    for section in ("session", "alerts", "hydration", "mqtt", "gpio"):
        for f in dataclasses.fields(getattr(defaults, section)):
            assert f"\n{f.name} = " in text, f"{section}.{f.name} is not in config/monitor.toml"
    for f in dataclasses.fields(defaults.analysis.activity):
        assert f"\n{f.name} = " in text, f"analysis.activity.{f.name} is not in config/monitor.toml"


BAD = [
    ({"station": {"id": "a/b"}}, "station.id"),
    ({"station": {"idd": "x"}}, "station.idd: is not a known key (did you mean 'id'?)"),
    (
        {"imu": [{"name": "w", "rate_hz": 300}]},
        "imu[0].rate_hz: the MPU-6050/6500 runs at 1000 Hz divided",
    ),
    (
        {"imu": [{"name": "w", "chip": "lsm6ds", "rate_hz": 1000}]},
        "imu[0].rate_hz: the lsm6ds runs at",
    ),
    ({"imu": [{"name": "w", "chip": "bmi160"}]}, "imu[0].chip: must be one of"),
    (
        {"imu": [{"name": "w", "address": 0x6A}]},
        "imu[0].address: the mpu6050 answers at 0x68 or 0x69",
    ),
    (
        {"imu": [{"name": "a"}, {"name": "a", "address": 0x69}]},
        "imu[1].name: 'a' is used by imu[0] too",
    ),
    ({"imu": [{"name": "a"}, {"name": "b"}]}, "imu[1].address: 0x68 is taken by imu[0]"),
    ({"imu": [{"rate_hz": 1000}]}, "imu[0].name: is required"),
    ({"imu": [{"name": "w", "range_g": True}]}, "imu[0].range_g: must be a whole number, not True"),
    ({"scale": {"mode": "tank"}}, "scale.mode: must be one of 'bottle', 'body'"),
    ({"scale": {"rate_sps": 15}}, "scale.rate_sps: must be one of 10, 20, 40, 80, 320"),
    ({"alerts": {"high_ratio": 0}}, "alerts.high_ratio: must be positive"),
    ({"analysis": {"activity": {"move": 3}}}, "analysis.activity.move: is not a known key"),
    ({"analysis": {"bands": {"fatigue": [7, 4]}}}, "analysis.bands"),
    (
        {"hydration": {"expected_intake_ml_per_h": [1]}},
        "hydration.expected_intake_ml_per_h: must be a pair",
    ),
    ({"i2c": {"bus": -1}}, "i2c.bus: must be at least 0"),
    ({"mqtt": {"password": "hunter2"}}, "mqtt.password: is not read from the TOML"),
    ({"mqtt": {"password_file": "/x"}}, "mqtt.username: is required when password_file is set"),
    ({"mqtt": {"prefix": "gym/#"}}, "mqtt.prefix: must be words joined by '/'"),
    ({"mqtt": {"port": 70000}}, "mqtt.port: must be at most 65535"),
    ({"gpio": {"red_pin": 2}}, "gpio.red_pin: BCM 2 is I2C (SDA)"),
    ({"gpio": {"red_pin": 17}}, "gpio.red_pin: BCM 17 is already green_pin"),
    ({"station": {"id": "history"}}, "station.id: 'history' is the broker's history user"),
    ({"station": {"id": "display"}}, "station.id: 'display' is the broker's display user"),
]


@pytest.mark.parametrize("data,message", BAD)
def test_each_mistake_names_its_key(data, message):
    with pytest.raises(ConfigError) as err:
        parse(data)
    assert message in str(err.value)


def test_bad_files(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="no such file"):
        load(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[station\nid = 1")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load(broken)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError):
        load(binary)


def test_check_config_prints_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "monitor.toml"
    bad.write_text('[[imu]]\nname = "w"\nrate_hz = "fast"\n')
    out = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "check-config", str(bad)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(EXAMPLE.parents[1])},
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines == [f"config error: {bad}: imu[0].rate_hz: must be a number, not 'fast'"]
    assert "Traceback" not in out.stderr


keys = st.text(
    st.characters(categories=["L", "N"], include_characters="_-"), min_size=1, max_size=12
)
values = st.recursive(
    st.none().map(lambda _: 0)
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
sections = st.sampled_from(
    ["station", "i2c", "imu", "scale", "analysis", "session", "alerts", "hydration", "mqtt", "x"]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(sections, values, max_size=4))
def test_any_document_either_loads_or_says_which_key(data):
    try:
        parse(data)
    except ConfigError as err:
        assert err.key and str(err).startswith(err.key)
