"""The install and uninstall scripts, checked by what they would do (--dry-run)."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def steps(script, *args):
    out = subprocess.run(["bash", str(ROOT / "systemd" / script), "--dry-run", *args], capture_output=True,
                         text=True, check=True)
    return [line[2:] for line in out.stdout.splitlines() if line.startswith("+ ")]


def test_station_install_makes_the_user_the_venv_the_config_and_enables_the_unit():
    s = steps("install.sh")
    text = "\n".join(s)
    assert "apt-get install -y -qq --no-install-recommends python3-venv python3-lgpio i2c-tools" in s
    assert "usermod -a -G i2c,gpio gym-monitor" in s
    assert "python3 -m venv --system-site-packages /opt/gym-monitor/venv" in s
    assert "install -m 0640 -g gym-monitor config/monitor.toml /etc/gym-monitor/monitor.toml" in text
    assert "install -m 0644 systemd/gym-monitor.service /etc/systemd/system/gym-monitor.service" in s
    assert s.index("systemctl daemon-reload") < s.index("systemctl enable --now gym-monitor.service")
    assert "gym-display" not in text


def test_display_install_installs_only_the_display():
    s = steps("install.sh", "--display")
    assert "install -m 0644 systemd/gym-display.service /etc/systemd/system/gym-display.service" in s
    assert not any("gym-monitor.service" in x for x in s)
    assert not any("python3-lgpio" in x for x in s)


def test_uninstall_keeps_config_and_state_unless_purged():
    kept = "\n".join(steps("uninstall.sh"))
    assert "systemctl disable --now gym-monitor.service" in kept
    assert "rm -rf /opt/gym-monitor" in kept and "/var/lib/gym-monitor" not in kept
    purged = steps("uninstall.sh", "--purge")
    assert "rm -rf /etc/gym-monitor /var/lib/gym-monitor" in purged and "userdel gym-monitor" in purged


def test_unknown_options_are_refused():
    out = subprocess.run(["bash", str(ROOT / "systemd" / "install.sh"), "--dry-run", "--bogus"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown option --bogus" in out.stderr
