"""Rough edges a user meets on the command line: each ends in one clear line, never a traceback.

Issue: tracebacks from `record` without /dev/i2c-1, `replay --plot` to a missing folder and
`replay | head`; `demo --speed 0`; `record --seconds -5` wrote nothing and exited 0; with I2C
not enabled `run` exited 2 and systemd restarted it every 2 s.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.errors import SensorNotFound
from monitor.sensors import LateBus

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
NO_I2C = not Path("/dev/i2c-1").exists()


def cli(*argv: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        **kwargs,
    )


@pytest.mark.parametrize(
    "argv, where",
    [
        (["record", "x.gtr", "--seconds", "-5"], "--seconds"),
        (["record", "x.gtr", "--seconds", "0"], "--seconds"),
        (["record", "x.gtr", "--seconds", "nan"], "--seconds"),
        (["demo", "--speed", "0"], "--speed"),
        (["demo", "--seconds", "-1"], "--seconds"),
        (["run", "--config", "x.toml", "--seconds", "inf"], "--seconds"),
    ],
)
def test_a_number_that_cannot_be_meant_is_a_usage_error(argv, where, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and where in err and "above 0" in err
    assert not (tmp_path / "x.gtr").exists()


@pytest.mark.skipif(not NO_I2C, reason="this machine has /dev/i2c-1")
@pytest.mark.parametrize("argv", [["record", "out.gtr", "--seconds", "1"], ["probe"]])
def test_without_i2c_record_and_probe_say_so_in_one_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot open /dev/i2c-1" in err[0] and "enable I2C" in err[0]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rec") / "session.gtr"
    done = cli("record", str(out), "--simulate", "--seconds", "20")
    assert done.returncode == 0, done.stderr
    return out


def test_replay_plot_to_a_missing_folder_is_one_line(recording, tmp_path):
    done = cli("replay", str(recording), "--plot", str(tmp_path / "no" / "such" / "plot.png"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"--plot {tmp_path / 'no' / 'such' / 'plot.png'}: the folder "
        f"{tmp_path / 'no' / 'such'} does not exist"
    ]


@pytest.mark.parametrize("reader", ["head -n 2", "true"])
def test_replay_into_a_reader_that_stops_early_ends_quietly(recording, reader):
    # `true` has gone before replay writes a byte: the first write meets a closed pipe
    done = subprocess.run(
        f"{sys.executable} -m monitor.cli replay {recording} | {reader}; "
        'echo "status ${PIPESTATUS[0]}"',
        shell=True,
        executable="/bin/bash",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == (3 if reader.startswith("head") else 1) and lines[-1] == "status 0", lines
    assert (
        "Traceback" not in done.stderr
        and "BrokenPipe" not in done.stderr
        and "Exception" not in done.stderr
    )


# ------------------------------------------------------------------ a bus that is not there


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_late_bus_retries_calmly_and_opens_when_the_bus_appears(caplog):
    clock, there = Clock(), {"bus": False}
    opened = []

    def opener(number):
        if not there["bus"]:
            raise FileNotFoundError(2, "No such file or directory")
        opened.append(number)
        return type(
            "Bus", (), {"read_byte_data": lambda self, a, r: 0x68, "close": lambda self: None}
        )()

    with caplog.at_level(logging.ERROR, logger="monitor.sensors"):
        bus = LateBus(1, opener=opener, monotonic=clock)
        for second in range(600):  # ten minutes without I2C
            clock.t = second + 0.5
            with pytest.raises(SensorNotFound, match="enable I2C"):
                bus.read_byte_data(0x68, 0x75)
    lines = [r.getMessage() for r in caplog.records if "cannot open /dev/i2c-1" in r.getMessage()]
    assert len(lines) == 10, len(lines)  # one line a minute
    there["bus"] = True
    clock.t = 1000.0
    assert bus.read_byte_data(0x68, 0x75) == 0x68 and opened == [1] and bus.is_open


@pytest.mark.skipif(not NO_I2C, reason="this machine has /dev/i2c-1")
def test_run_without_i2c_keeps_running_and_stops_cleanly_on_sigterm(tmp_path):
    cfg = tmp_path / "monitor.toml"
    cfg.write_text(
        f'[station]\nid = "bench-1"\nstate_dir = "{tmp_path / "state"}"\n[mqtt]\nenabled = false\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )
    try:
        time.sleep(8)
        assert proc.poll() is None, proc.stdout.read()  # still running: no exit 2, no restart loop
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    out = proc.stdout.read()
    assert "Traceback" not in out
    assert (
        out.count("cannot open /dev/i2c-1") <= 2
    )  # the bus's line once a minute, a fault alert once
    assert "sensor.fault" in out
