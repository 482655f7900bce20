"""The systemd units: checked by systemd's own tools where they exist, and by reading them.

``systemd-analyze verify`` exits 0 even when it ignores a misspelt key or a
bad value (it only warns), so a unit passes here only if verify prints
nothing about it. Verify also insists the ExecStart binary exists; a copy of
the unit with that one path swapped for /bin/true is verified instead, every
argument kept.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"
CHECKED = ("gym-monitor.service", "gym-display.service", "gym-history.service")

#: `systemd-analyze security` exposure (0 safe .. 10 unsafe) each unit must stay within;
#: measured 1.5, 1.2 and 1.2 with systemd 252. Devices and the network are what the
#: station needs, so most of what remains cannot go.
MAX_EXPOSURE = {
    "gym-monitor.service": 1.8,
    "gym-display.service": 1.5,
    "gym-history.service": 1.5,
}

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (apt install systemd)"
)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value in order (systemd keys repeat: DeviceAllow=, After=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    lines = iter(text.splitlines())
    for line in lines:
        line = line.strip()
        while line.endswith("\\"):  # continuation lines
            line = line[:-1] + " " + next(lines, "").strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        if current is None or "=" not in line:
            raise ValueError(f"not a unit file line: {line!r}")
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def words(values: list[str]) -> set[str]:
    return {w for v in values for w in v.split()}


@pytest.fixture(scope="module")
def monitor() -> dict[str, dict[str, list[str]]]:
    return parse_unit((UNITS / "gym-monitor.service").read_text())


def test_parser_keeps_repeated_keys_and_empty_values():
    unit = parse_unit(
        "[Service]\n# c\nDeviceAllow=/dev/a rw\nDeviceAllow=/dev/b r\nCapabilityBoundingSet=\n"
        "ExecStart=/bin/x \\\n  --y\n"
    )
    assert unit["Service"] == {
        "DeviceAllow": ["/dev/a rw", "/dev/b r"],
        "CapabilityBoundingSet": [""],
        "ExecStart": ["/bin/x  --y"],
    }


def test_monitor_unit_is_a_notify_service_with_a_watchdog(monitor):
    s = monitor["Service"]
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] == ["10"]
    assert s["Restart"] == ["on-failure"]
    assert s["RestartSec"] == ["2"]
    assert s["ExecStart"] == [
        "/opt/gym-monitor/venv/bin/gym-monitor run --config /etc/gym-monitor/monitor.toml"
    ]


@pytest.mark.parametrize("unit", CHECKED)
def test_a_configuration_error_is_not_restarted(unit):
    """Exit status 2 is what both programs return for a bad config; systemd must not retry it."""
    service = parse_unit((UNITS / unit).read_text())["Service"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2"]


def test_the_station_exits_2_on_a_bad_config(tmp_path):
    bad = tmp_path / "monitor.toml"
    bad.write_text('[station]\nid = "no spaces allowed"\n')
    for command in (["run", "--config", str(bad)], ["check-config", str(bad)]):
        run = subprocess.run(
            [sys.executable, "-m", "monitor.cli", *command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2, (command, run.stderr)
        assert "station.id" in run.stderr and "Traceback" not in run.stderr


def test_the_display_exits_2_on_a_bad_option(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "monitor.display", "--tls-ca", str(tmp_path / "nope.crt")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert "nope.crt" in run.stderr and "Traceback" not in run.stderr


def test_monitor_command_line_is_one_the_cli_accepts(monitor):
    from monitor.cli import build_parser

    argv = monitor["Service"]["ExecStart"][0].split()[1:]
    args = build_parser().parse_args(argv)
    assert args.config == "/etc/gym-monitor/monitor.toml"


def test_monitor_unit_owns_its_state_and_config_directories(monitor):
    s = monitor["Service"]
    assert s["User"] == ["gym-monitor"]
    assert {"i2c", "gpio"} <= words(s["SupplementaryGroups"])
    assert s["StateDirectory"] == ["gym-monitor"]
    assert s["ConfigurationDirectory"] == ["gym-monitor"]
    config = s["ExecStart"][0].split("--config ")[1].split()[0]
    assert config.startswith("/etc/gym-monitor/")
    # lgpio writes its notification pipe into the working directory: the one
    # writable place under ProtectSystem=strict is the state directory.
    assert s["WorkingDirectory"] == ["/var/lib/gym-monitor"]
    assert s["UMask"] == ["0027"]


def test_monitor_unit_reaches_i2c_and_gpio_through_a_closed_device_policy(monitor):
    s = monitor["Service"]
    assert s["DevicePolicy"] == ["closed"]
    allowed = set(s["DeviceAllow"])
    assert {"/dev/i2c-1 rw", "/dev/gpiochip0 rw", "/dev/gpiochip4 rw"} <= allowed
    # PrivateDevices=yes would hide /dev/i2c-1 and the gpiochips altogether.
    assert s.get("PrivateDevices", ["no"]) == ["no"]
    # gpiozero reads /proc/cpuinfo and /proc/device-tree to know the board.
    assert "pid" not in s.get("ProcSubset", [])
    # PrivateUsers would unmap the i2c and gpio groups that open the devices.
    assert s.get("PrivateUsers", ["no"]) == ["no"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
    ],
)
def test_monitor_unit_hardening(monitor, key, value):
    assert monitor["Service"].get(key) == [value]


def test_monitor_unit_sockets_and_system_calls(monitor):
    s = monitor["Service"]
    assert words(s["RestrictAddressFamilies"]) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert "@system-service" in s["SystemCallFilter"]


def test_monitor_unit_ordering_and_install(monitor):
    u = monitor["Unit"]
    assert {"network-online.target", "mosquitto.service"} <= words(u["After"])
    assert "network-online.target" in words(u["Wants"])
    assert "mosquitto.service" not in words(u.get("Requires", []))  # the broker may live elsewhere
    assert monitor["Install"]["WantedBy"] == ["multi-user.target"]


# ----------------------------------------------------------------- systemd-analyze


def _runnable_copy(unit: str, tmp_path: Path) -> Path:
    """The unit with each ExecStart*'s missing binary replaced by /bin/true, arguments kept."""
    text = (UNITS / unit).read_text()

    def swap(m: re.Match) -> str:
        return m.group(1) + ("/bin/true" if not Path(m.group(2)).exists() else m.group(2))

    text = re.sub(r"(?m)^(Exec\w+=[-@:+!]*)(/\S+)", swap, text)
    copy = tmp_path / unit
    copy.write_text(text)
    return copy


@needs_analyze
@pytest.mark.parametrize("unit", CHECKED)
def test_systemd_analyze_verify_is_silent(unit, tmp_path):
    copy = _runnable_copy(unit, tmp_path)
    run = subprocess.run(
        [ANALYZE, "verify", "--man=no", str(copy)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Only what verify says about this unit counts: a broken unit elsewhere
    # on the machine running the tests is not ours to fix.
    about_unit = [line for line in (run.stdout + run.stderr).splitlines() if unit in line]
    assert run.returncode == 0 and not about_unit, "\n".join(about_unit) or run.stderr


@needs_analyze
def test_verify_catches_what_this_test_relies_on(tmp_path):
    """verify must complain (even if it exits 0) about a misspelt key.

    Otherwise the test above proves nothing.
    """
    bad = tmp_path / "typo.service"
    bad.write_text("[Service]\nType=notify\nNoNewPrivilege=yes\nExecStart=/bin/true\n")
    run = subprocess.run(
        [ANALYZE, "verify", "--man=no", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "NoNewPrivilege" in run.stdout + run.stderr


def _exposure(unit_file: Path) -> tuple[float, str]:
    run = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(unit_file)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in run.stderr and run.returncode != 0:
        pytest.skip(
            f"this systemd-analyze has no --offline (systemd 250 or later): {run.stderr.strip()}"
        )
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?) (\w+)", run.stdout)
    assert m, run.stdout + run.stderr
    return float(m.group(1)), m.group(2)


@needs_analyze
@pytest.mark.parametrize("unit", CHECKED)
def test_systemd_analyze_security_exposure(unit, capsys):
    exposure, word = _exposure(UNITS / unit)
    with capsys.disabled():
        print(f"\n{unit}: systemd-analyze security exposure {exposure} {word}")
    assert exposure <= MAX_EXPOSURE[unit], f"{unit} exposure rose to {exposure} {word}"


@needs_analyze
def test_exposure_rises_when_hardening_is_dropped(tmp_path):
    """The measurement can fail: the same unit without its sandbox scores far worse."""
    text = (UNITS / "gym-monitor.service").read_text()
    bare = re.sub(r"(?ms)^# --- Sandboxing.*?(?=^\[Install\])", "", text)
    assert bare != text
    loose = tmp_path / "gym-monitor.service"
    loose.write_text(bare)
    exposure, _ = _exposure(loose)
    assert exposure > MAX_EXPOSURE["gym-monitor.service"] + 2
