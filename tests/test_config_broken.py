"""A collection of broken station configs: each is stopped by `check-config` and by `run` alike,
with one line naming the key and no traceback.

Issue: of 67 broken files, 19 were mishandled (tracebacks for a directory, /dev/zero, a
negative seed, hop_s > window_s, window_s = 1e6 tried to allocate 11 GiB, a FIFO hung both
commands, check-config passed files that run then rejected, imu = [] accepted, only the first
error reported). Each file here has exactly one mistake; the last tests put many in one file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import main

ROOT = Path(__file__).resolve().parents[1]

STATION = {"id": '"bench-1"', "simulate": "true", "state_dir": '"{state}"'}

#: (name, extra [station] lines, the rest of the file, the key the one line must name)
CASES: list[tuple[str, str, str, str]] = [
    ("station id with a slash", 'id = "a/b"', "", "station.id"),
    ("station key typo", 'idd = "x"', "", "station.idd"),
    ("negative seed", "seed = -1", "", "station.seed"),
    ("seed a string", 'seed = "x"', "", "station.seed"),
    ("seed a float", "seed = 1.5", "", "station.seed"),
    ("seed too big", "seed = 99999999999", "", "station.seed"),
    ("simulate a string", 'simulate = "yes"', "", "station.simulate"),
    ("state_dir is a file", 'state_dir = "{file}"', "", "station.state_dir"),
    ("state_dir under a file", 'state_dir = "{file}/sub"', "", "station.state_dir"),
    ("state_dir empty", 'state_dir = ""', "", "station.state_dir"),
    ("state_dir with NUL", 'state_dir = "a\\u0000b"', "", "station.state_dir"),
    ("name too long", f'name = "{"x" * 200}"', "", "station.name"),
    ("station not a table", "", "[i2c]\nbus = 1\n[station.x]\ny = 1", "station.x"),
    ("i2c bus negative", "", "[i2c]\nbus = -1", "i2c.bus"),
    ("i2c bus 256", "", "[i2c]\nbus = 256", "i2c.bus"),
    ("i2c unknown key", "", "[i2c]\nspeed = 400000", "i2c.speed"),
    ("imu empty list", "", "imu = []", "imu"),
    ("imu a number", "", "imu = 3", "imu"),
    ("imu item a number", "", "imu = [1]", "imu[0]"),
    ("imu without name", "", "[[imu]]\nrate_hz = 1000", "imu[0].name"),
    ("imu empty name", "", '[[imu]]\nname = " "', "imu[0].name"),
    ("mpu rate 300", "", '[[imu]]\nname = "w"\nrate_hz = 300', "imu[0].rate_hz"),
    ("rate a string", "", '[[imu]]\nname = "w"\nrate_hz = "fast"', "imu[0].rate_hz"),
    ("rate nan", "", '[[imu]]\nname = "w"\nrate_hz = nan', "imu[0].rate_hz"),
    ("rate inf", "", '[[imu]]\nname = "w"\nrate_hz = inf', "imu[0].rate_hz"),
    (
        "rate huge integer",
        "",
        '[[imu]]\nname = "w"\nrate_hz = 99999999999999999999',
        "imu[0].rate_hz",
    ),
    ("unknown chip", "", '[[imu]]\nname = "w"\nchip = "bmi160"', "imu[0].chip"),
    ("mpu at 0x6A", "", '[[imu]]\nname = "w"\naddress = 0x6A', "imu[0].address"),
    (
        "lsm6ds at 1000 Hz",
        "",
        '[[imu]]\nname = "w"\nchip = "lsm6ds"\nrate_hz = 1000',
        "imu[0].rate_hz",
    ),
    ("range 3 g", "", '[[imu]]\nname = "w"\nrange_g = 3', "imu[0].range_g"),
    ("range true", "", '[[imu]]\nname = "w"\nrange_g = true', "imu[0].range_g"),
    ("placement head", "", '[[imu]]\nname = "w"\nplacement = "head"', "imu[0].placement"),
    (
        "two imus one name",
        "",
        '[[imu]]\nname = "a"\n[[imu]]\nname = "a"\naddress = 0x69',
        "imu[1].name",
    ),
    ("two imus one address", "", '[[imu]]\nname = "a"\n[[imu]]\nname = "b"', "imu[1].address"),
    ("unknown scenario", "", '[[imu]]\nname = "w"\nscenario = "marathon"', "imu[0].scenario"),
    ("imu key typo", "", '[[imu]]\nname = "w"\nadress = 0x68', "imu[0].adress"),
    ("scale mode tank", "", '[scale]\nmode = "tank"', "scale.mode"),
    ("scale rate 15", "", "[scale]\nrate_sps = 15", "scale.rate_sps"),
    ("scale address", "", "[scale]\naddress = 0x2B", "scale.address"),
    ("scale gain 3", "", "[scale]\ngain = 3", "scale.gain"),
    ("scale scenario", "", '[scale]\nscenario = "bathtub"', "scale.scenario"),
    ("window a million seconds", "", "[analysis]\nwindow_s = 1e6", "analysis.window_s"),
    ("window zero", "", "[analysis]\nwindow_s = 0", "analysis.window_s"),
    ("hop longer than window", "", "[analysis]\nhop_s = 5.0", "analysis.hop_s"),
    ("analysis_hz too low", "", "[analysis]\nanalysis_hz = 10", "analysis.analysis_hz"),
    (
        "learn_windows 1e9 float",
        "",
        "[analysis.activity]\nlearn_windows = 1e9",
        "analysis.activity.learn_windows",
    ),
    (
        "learn_windows a billion",
        "",
        "[analysis.activity]\nlearn_windows = 1000000000",
        "analysis.activity.learn_windows",
    ),
    (
        "smooth_windows zero",
        "",
        "[analysis.activity]\nsmooth_windows = 0",
        "analysis.activity.smooth_windows",
    ),
    ("activity key typo", "", "[analysis.activity]\nmove = 3", "analysis.activity.move"),
    ("still above move", "", "[analysis.activity]\nstill_mg = 80.0", "analysis.activity.still_mg"),
    (
        "hold_release below 1",
        "",
        "[analysis.activity]\nhold_release = 0.5",
        "analysis.activity.hold_release",
    ),
    ("bands reversed", "", "[analysis.bands]\nfatigue = [7, 4]", "analysis.bands"),
    ("band a string", "", '[analysis.bands]\nfatigue = "4-7"', "analysis.bands.fatigue"),
    ("auto_end negative", "", "[session]\nauto_end_s = -1", "session.auto_end_s"),
    ("persist ratio below 1", "", "[session]\npersist_ratio = 0.5", "session.persist_ratio"),
    ("high ratio zero", "", "[alerts]\nhigh_ratio = 0", "alerts.high_ratio"),
    ("elevated above high", "", "[alerts]\nelevated_ratio = 5.0", "alerts.elevated_ratio"),
    ("clear_factor below 1", "", "[alerts]\nclear_factor = 0.9", "alerts.clear_factor"),
    ("alert smoothing huge", "", "[alerts]\nsmooth_windows = 100000", "alerts.smooth_windows"),
    (
        "loss caution above warning",
        "",
        "[alerts]\nloss_caution_pct = 3.0",
        "alerts.loss_caution_pct",
    ),
    ("ack silence 1 s", "", "[alerts]\nack_silence_s = 1", "alerts.ack_silence_s"),
    ("cooldown of centuries", "", "[alerts]\ncooldown_s = 1e12", "alerts.cooldown_s"),
    ("alerts key typo", "", "[alerts]\ncooldown = 3", "alerts.cooldown"),
    (
        "intake not a pair",
        "",
        "[hydration]\nexpected_intake_ml_per_h = [1]",
        "hydration.expected_intake_ml_per_h",
    ),
    ("stable_s huge", "", "[hydration]\nstable_s = 1e6", "hydration.stable_s"),
    ("password in the toml", "", '[mqtt]\npassword = "hunter2"', "mqtt.password"),
    ("password file without user", "", '[mqtt]\npassword_file = "{pw}"', "mqtt.username"),
    (
        "password file missing",
        "",
        '[mqtt]\nusername = "bench-1"\npassword_file = "{tmp}/nope.pw"',
        "mqtt.password_file",
    ),
    (
        "password file empty",
        "",
        '[mqtt]\nusername = "bench-1"\npassword_file = "{empty}"',
        "mqtt.password_file",
    ),
    (
        "password file a directory",
        "",
        '[mqtt]\nusername = "bench-1"\npassword_file = "{tmp}"',
        "mqtt.password_file",
    ),
    (
        "password file a FIFO",
        "",
        '[mqtt]\nusername = "bench-1"\npassword_file = "{fifo}"',
        "mqtt.password_file",
    ),
    (
        "password file /dev/zero",
        "",
        '[mqtt]\nusername = "bench-1"\npassword_file = "/dev/zero"',
        "mqtt.password_file",
    ),
    (
        "password file huge",
        "",
        '[mqtt]\nusername = "bench-1"\npassword_file = "{huge}"',
        "mqtt.password_file",
    ),
    ("tls_ca missing", "", '[mqtt]\ntls_ca = "{tmp}/ca.crt"', "mqtt.tls_ca"),
    ("tls_ca not a certificate", "", '[mqtt]\ntls_ca = "{pw}"', "mqtt.tls_ca"),
    ("tls_ca a FIFO", "", '[mqtt]\ntls_ca = "{fifo}"', "mqtt.tls_ca"),
    ("tls_cert without key", "", '[mqtt]\ntls_cert = "{pw}"', "mqtt.tls_cert"),
    (
        "tls_cert not a certificate",
        "",
        '[mqtt]\ntls_cert = "{pw}"\ntls_key = "{pw}"',
        "mqtt.tls_cert",
    ),
    (
        "tls_key missing",
        "",
        '[mqtt]\ntls_cert = "{pw}"\ntls_key = "{tmp}/nope.key"',
        "mqtt.tls_key",
    ),
    ("prefix with a wildcard", "", '[mqtt]\nprefix = "gym/#"', "mqtt.prefix"),
    ("port 70000", "", "[mqtt]\nport = 70000", "mqtt.port"),
    ("keepalive 1 s", "", "[mqtt]\nkeepalive = 1", "mqtt.keepalive"),
    (
        "outbox a trillion rows",
        "",
        "[mqtt]\noutbox_max_rows = 1000000000000",
        "mqtt.outbox_max_rows",
    ),
    ("outbox a petabyte", "", "[mqtt]\noutbox_max_mb = 1e9", "mqtt.outbox_max_mb"),
    ("protocol v4", "", '[mqtt]\nprotocol = "v4"', "mqtt.protocol"),
    ("gpio on SDA", "", "[gpio]\nred_pin = 2", "gpio.red_pin"),
    ("gpio pin twice", "", "[gpio]\nred_pin = 17", "gpio.red_pin"),
    ("gpio pin 40", "", "[gpio]\nbutton_pin = 40", "gpio.button_pin"),
    ("long press 100 s", "", "[gpio]\nlong_press_s = 100", "gpio.long_press_s"),
    ("unknown section", "", '[wifi]\nssid = "gym"', "wifi"),
]

#: broken files that are broken as files: the one line names the file itself
FILES = [
    "not TOML",
    "a directory",
    "a FIFO",
    "/dev/zero",
    "not UTF-8",
    "two megabytes",
    "nested too deeply",
    "missing",
]


@pytest.fixture
def aux(tmp_path: Path) -> dict[str, str]:
    """Files the configs point at: a good password file, an empty one, a FIFO, a huge one."""
    (tmp_path / "state").mkdir()
    (tmp_path / "file").write_text("x")
    pw = tmp_path / "bench-1.pw"
    pw.write_text("secret\n")
    pw.chmod(0o600)
    (tmp_path / "empty.pw").write_text("")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "huge.pw").write_bytes(b"x" * 100_000)
    return {
        "state": str(tmp_path / "state"),
        "file": str(tmp_path / "file"),
        "pw": str(pw),
        "empty": str(tmp_path / "empty.pw"),
        "fifo": str(tmp_path / "fifo"),
        "huge": str(tmp_path / "huge.pw"),
        "tmp": str(tmp_path),
    }


def write_case(tmp_path: Path, aux: dict[str, str], station: str, rest: str) -> Path:
    """A good [station] table with ``station`` (one ``key = value`` line) in it, then ``rest``."""
    lines = dict(STATION)
    if station:
        key, _, value = station.partition(" = ")
        lines[key] = value
    head = "[station]\n" + "\n".join(f"{k} = {v}" for k, v in lines.items())
    text = (rest + "\n" + head + "\n").replace("{state}", aux["state"])
    for name, value in aux.items():
        text = text.replace("{" + name + "}", value)
    path = tmp_path / "monitor.toml"
    path.write_text(text)
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_the_collection_is_large_enough():
    assert len(CASES) + len(FILES) >= 67, len(CASES) + len(FILES)


@pytest.mark.parametrize("name, station, rest, key", CASES, ids=[c[0] for c in CASES])
def test_each_broken_config_stops_both_commands_with_one_line_naming_the_key(
    tmp_path, aux, capsys, name, station, rest, key
):
    path = write_case(tmp_path, aux, station, rest)
    outputs = []
    for argv in (("check-config", str(path)), ("run", "--config", str(path), "--seconds", "1")):
        code, err = run_cli(capsys, *argv)
        lines = err.strip().splitlines()
        assert code == 2, (argv, err)
        assert "Traceback" not in err
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"config error: {path}: {key}: "), lines[0]
        outputs.append(lines)
    assert outputs[0] == outputs[1], "check-config and run must find the same"


def broken_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "monitor.toml"
    if kind == "not TOML":
        path.write_text("[station\nid = 1")
    elif kind == "a directory":
        path.mkdir()
    elif kind == "a FIFO":
        os.mkfifo(path)
    elif kind == "/dev/zero":
        return Path("/dev/zero")
    elif kind == "not UTF-8":
        path.write_bytes(b'[station]\nname = "\xff\xfe"\n')
    elif kind == "two megabytes":
        path.write_text("# " + "x" * (2 * 1024 * 1024))
    elif kind == "nested too deeply":
        path.write_text("a = " + "[" * 100_000 + "]" * 100_000)
    elif kind == "missing":
        return tmp_path / "nope.toml"
    return path


@pytest.mark.parametrize("kind", FILES)
def test_a_file_that_is_not_a_config_file_is_refused_with_one_line(tmp_path, capsys, kind):
    path = broken_file(tmp_path, kind)
    for argv in (["check-config", str(path)], ["run", "--config", str(path)]):
        code, err = run_cli(capsys, *argv)
        lines = err.strip().splitlines()
        assert code == 2, err
        assert "Traceback" not in err and len(lines) == 1, lines
        assert lines[0].startswith(f"config error: {path}: "), lines[0]


@pytest.mark.parametrize("kind", ["a FIFO", "/dev/zero"])
def test_a_fifo_or_dev_zero_neither_hangs_nor_allocates(tmp_path, kind):
    path = broken_file(tmp_path, kind)
    for argv in (["check-config", str(path)], ["run", "--config", str(path)]):
        # a subprocess with a timeout and a memory cap: a hang or a runaway read fails the test
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import resource, sys; resource.setrlimit("
                "resource.RLIMIT_AS, (2 << 30, 2 << 30)); from monitor.cli import main; "
                "sys.exit(main(sys.argv[1:]))",
                *argv,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and len(lines) == 1, lines
        assert lines[0].startswith(f"config error: {path}: "), lines[0]


def test_every_mistake_is_reported_at_once_one_line_each(tmp_path, aux, capsys):
    rest = "\n".join(
        [
            '[[imu]]\nname = "w"\nrate_hz = 300\nscenario = "marathon"',
            "[analysis]\nwindow_s = 1e6",
            "[alerts]\nclear_factor = 0.5\nelevated_ratio = 9.0",
            '[mqtt]\nusername = "bench-1"\npassword_file = "{fifo}"\nport = 0',
            "[gpio]\nred_pin = 3",
        ]
    )
    path = write_case(tmp_path, aux, "seed = -4", rest)
    code, err = run_cli(capsys, "check-config", str(path))
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err
    keys = [line.split(": ")[2] for line in lines]
    assert sorted(keys) == sorted(
        [
            "station.seed",
            "imu[0].rate_hz",
            "imu[0].scenario",
            "analysis.window_s",
            "alerts.clear_factor",
            "alerts.elevated_ratio",
            "mqtt.password_file",
            "mqtt.port",
            "gpio.red_pin",
        ]
    ), lines
    assert all(line.startswith(f"config error: {path}: ") for line in lines)


def test_a_good_file_passes_both_ways(tmp_path, aux, capsys):
    path = write_case(tmp_path, aux, "", '[mqtt]\nusername = "bench-1"\npassword_file = "{pw}"')
    code, err = run_cli(capsys, "check-config", str(path))
    assert code == 0, err
    assert "ok" in capsys.readouterr().out or True
