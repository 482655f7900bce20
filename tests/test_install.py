"""The installer: what it would do (--dry-run), and what it does, for real, in a temporary root.

The real runs (``install.sh --root DIR``) use the wheelhouse that ``.ci/setup test`` builds
with requirements/wheelhouse.sh (build/wheelhouse) and no network, and Debian's own
``/usr/bin/python3`` with python3-venv and python3-numpy: on Debian bookworm that is the
Python, setuptools and numpy a Raspberry Pi runs. The broker the installer sets up is
started as a real Mosquitto and reached over TLS with the CA it generated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import mosquitto as broker_helpers

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "systemd" / "install.sh"
UNINSTALL = ROOT / "systemd" / "uninstall.sh"
WHEELHOUSE = ROOT / "build" / "wheelhouse"
DEBIAN_PYTHON = Path("/usr/bin/python3")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: What Debian bookworm (Raspberry Pi OS 12) ships; the Pi's venv uses these.
BOOKWORM = {"setuptools": "66.1.1", "wheel": "0.38.4", "numpy": "1.24.2"}


def steps(script: Path | str, *args: str) -> list[str]:
    path = script if isinstance(script, Path) else ROOT / "systemd" / script
    out = subprocess.run(
        ["bash", str(path), "--dry-run", *args], capture_output=True, text=True, check=True
    )
    return [line[2:] for line in out.stdout.splitlines() if line.startswith("+ ")]


def index_of(lines: list[str], pattern: str) -> int:
    """Index of the first line matching the regular expression ``pattern``."""
    for n, line in enumerate(lines):
        if re.search(pattern, line):
            return n
    raise AssertionError(f"no step matches {pattern!r}:\n" + "\n".join(lines))


# --------------------------------------------------------------------------- dry runs


def test_station_install_steps_in_order():
    out = subprocess.run(
        ["bash", str(INSTALL), "--dry-run"], capture_output=True, text=True, check=True
    ).stdout
    assert "Debian packages: python3-venv python3-numpy python3-lgpio i2c-tools" in out
    s = steps("install.sh")
    assert "usermod -a -G i2c,gpio gym-monitor" in s
    venv = index_of(
        s,
        r"^/usr/bin/python3 -m venv --system-site-packages "
        r"/opt/gym-monitor/releases/[^ ]+/venv$",
    )
    build = index_of(
        s,
        r"pip install --quiet --require-hashes .* -r /opt/gym-monitor/releases/.*"
        r"/requirements/build\.txt$",
    )
    deps = index_of(s, r"pip install --quiet --require-hashes .* -r .*/requirements/station\.txt$")
    project = index_of(
        s,
        r"pip install --quiet --no-deps --no-index --no-build-isolation "
        r"/opt/gym-monitor/releases/",
    )
    live = index_of(s, r"^mv -T /opt/gym-monitor/current\.new /opt/gym-monitor/current$")
    assert venv < build < deps < project < live
    assert "ln -sfn current/venv /opt/gym-monitor/venv" in s
    assert (
        "install -m 0640 -o root -g gym-monitor config/monitor.toml /etc/gym-monitor/monitor.toml"
        in s
    )
    unit = s.index(
        "install -m 0644 systemd/gym-monitor.service /etc/systemd/system/gym-monitor.service"
    )
    reload = s.index("systemctl daemon-reload")
    check = index_of(
        s, r"^runuser -u gym-monitor -- .*gym-monitor check-config /etc/gym-monitor/monitor\.toml$"
    )
    start = index_of(
        s, r"systemctl enable gym-monitor\.service; systemctl restart gym-monitor\.service"
    )
    assert live < unit < reload < check < start
    assert "if it passes and [station] id is not the example's" in out
    assert not any("gym-display" in x for x in s)


def test_online_installs_take_pypi_with_hashes_and_offline_ones_only_the_wheelhouse(tmp_path):
    online = [x for x in steps("install.sh") if " -m pip install" in x]
    assert all(
        "--index-url https://pypi.org/simple" in x for x in online if "--require-hashes" in x
    )
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    offline = [
        x
        for x in steps("install.sh", "--wheelhouse", str(wheels), "--display")
        if " -m pip install" in x
    ]
    assert len(offline) == 3
    assert all("--no-index" in x for x in offline)
    assert all(f"--find-links {wheels}" in x and "--require-hashes" in x for x in offline[:2])
    assert offline[1].endswith("/requirements/display.txt")  # the station's locks and more
    assert not any("pypi.org" in x for x in offline)


def test_display_install_installs_only_the_display():
    s = steps("install.sh", "--display")
    assert (
        "install -m 0644 systemd/gym-display.service /etc/systemd/system/gym-display.service" in s
    )
    assert not any("gym-monitor.service" in x for x in s)
    assert not any("python3-lgpio" in x or "useradd" in x for x in s)
    assert "systemctl enable gym-display.service" in s


def test_broker_install_steps():
    s = steps(
        "install.sh", "--broker", "--display", "--broker-name", "gym.lan", "--add-user", "bench-1"
    )
    assert "install -m 0644 config/mosquitto/mosquitto.conf /etc/mosquitto/conf.d/gym.conf" in s
    assert "install -m 0640 -o root -g mosquitto config/mosquitto/acl /etc/mosquitto/gym.acl" in s
    certs = index_of(
        s,
        r"^bash config/mosquitto/make-certs\.sh --cert-dir /etc/mosquitto/certs "
        r"--ca-dir /etc/mosquitto/ca --group mosquitto gym\.lan$",
    )
    users = [
        re.search(r"/etc/mosquitto/gym\.passwd (\S+) ", x).group(1)
        for x in s
        if x.startswith("mosquitto_passwd")
    ]
    assert users == ["display", "operator", "integrator", "homeassistant", "bench-1"]
    copy = s.index(
        "install -m 0600 /etc/mosquitto/gym-users/display.password "
        "/etc/gym-monitor/display-mqtt.password"
    )
    ca = s.index("install -m 0644 /etc/mosquitto/certs/gym-ca.crt /etc/gym-monitor/gym-ca.crt")
    restart = s.index("systemctl restart mosquitto.service")
    assert certs < copy and certs < ca < restart
    assert "chown root:mosquitto /etc/mosquitto/gym.passwd" in s


def test_a_station_gets_the_ca_and_its_password(tmp_path):
    ca, pw = tmp_path / "gym-ca.crt", tmp_path / "bench-1.password"
    ca.write_text("x")
    pw.write_text("y")
    s = steps("install.sh", "--ca", str(ca), "--mqtt-password", str(pw))
    assert f"install -m 0644 {ca} /etc/gym-monitor/gym-ca.crt" in s
    assert f"install -m 0640 -o root -g gym-monitor {pw} /etc/gym-monitor/mqtt-password" in s


HISTORY_UNIT = ROOT / "systemd" / "gym-history.service"
ACL = ROOT / "config" / "mosquitto" / "acl"


def credentials(unit: Path) -> dict[str, str]:
    """A unit's LoadCredential= lines: credential name -> the file systemd hands over."""
    lines = re.findall(r"(?m)^LoadCredential=([^:\n]+):(.+)$", unit.read_text())
    return dict(lines)


def test_history_install_steps_in_order():
    out = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--history"], capture_output=True, text=True, check=True
    ).stdout
    assert "Debian packages: python3-venv python3-numpy" in out and "lgpio" not in out
    s = steps("install.sh", "--history")
    lock = index_of(s, r"pip install --quiet --require-hashes .* -r .*/requirements/history\.txt$")
    smoke = index_of(s, r"-c import .*monitor\.history\.service, sqlalchemy, alembic, psycopg$")
    live = index_of(s, r"^mv -T /opt/gym-monitor/current\.new /opt/gym-monitor/current$")
    config = s.index("install -m 0640 config/history.toml /etc/gym-monitor/history.toml")
    # The new config names what the unit hands the service, where systemd puts it.
    edit = index_of(s, r"^sed -i .* /etc/gym-monitor/history\.toml$")
    run_dir = "/run/credentials/gym-history.service"
    handed = credentials(HISTORY_UNIT)
    assert handed["mqtt-password"] == "/etc/gym-monitor/history-mqtt.password"
    assert handed["staff.json"] == "/etc/gym-monitor/staff.json"
    assert 'username = "history"' in s[edit]
    assert f'password_file = "{run_dir}/mqtt-password"' in s[edit]
    assert f'staff_file = "{run_dir}/staff.json"' in s[edit]
    unit = s.index(
        "install -m 0644 systemd/gym-history.service /etc/systemd/system/gym-history.service"
    )
    reload = s.index("systemctl daemon-reload")
    check = index_of(s, r"venv/bin/python -c 'load\(/etc/gym-monitor/history\.toml\)'")
    start = s.index("systemctl enable gym-history.service")
    restart = s.index("systemctl restart gym-history.service")  # an upgrade runs the new release
    assert lock < smoke < live < config < edit < unit < reload < check < start < restart
    assert "(then, if it loads and every LoadCredential= file of the unit exists:)" in out
    assert not any(
        "gym-monitor.service" in x or "gym-display.service" in x or "useradd" in x for x in s
    )
    offline = [
        x
        for x in steps("install.sh", "--history", "--wheelhouse", "/tmp")
        if " -m pip install" in x
    ]
    assert len(offline) == 3 and all("--no-index" in x for x in offline)
    assert offline[1].endswith("/requirements/history.txt")


def test_history_with_the_broker_gets_its_own_user_and_password():
    s = steps("install.sh", "--broker", "--history", "--add-user", "bench-1")
    users = [
        re.search(r"/etc/mosquitto/gym\.passwd (\S+) ", x).group(1)
        for x in s
        if x.startswith("mosquitto_passwd")
    ]
    assert users == ["display", "operator", "integrator", "homeassistant", "history", "bench-1"]
    # The user is the ACL's: it reads every station and alone writes the athletes' profiles.
    acl = ACL.read_text()
    block = acl.split("\nuser history\n")[1].split("\n\n")[0].splitlines()
    assert "topic read gym/#" in block and "topic write gym/_athletes/#" in block
    copy = s.index(
        "install -m 0600 /etc/mosquitto/gym-users/history.password "
        "/etc/gym-monitor/history-mqtt.password"
    )
    assert users and copy < s.index("systemctl enable gym-history.service")
    assert not any("display-mqtt.password" in x for x in s)  # no display asked for


def test_an_upgrade_of_one_service_keeps_the_packages_of_another(tmp_path):
    """One venv serves all: with the history unit installed, --station still takes its lock."""
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    index_of(steps("install.sh", "--root", str(tmp_path), "--station"), r"/station\.txt$")
    (units / "gym-history.service").write_text("")
    s = steps("install.sh", "--root", str(tmp_path), "--station")
    index_of(s, r"--require-hashes .* -r .*/requirements/history\.txt$")
    assert not any(x.endswith("/requirements/station.txt") for x in s)


def acl_names() -> set[str]:
    """The ACL's own users, and the levels under gym/ it grants rights on."""
    text = "\n".join(x for x in ACL.read_text().splitlines() if not x.lstrip().startswith("#"))
    users = set(re.findall(r"(?m)^user\s+(\S+)", text))
    levels = {m for m in re.findall(r"gym/([A-Za-z0-9_][A-Za-z0-9_-]*)/", text)}
    return users | levels


RESERVED = sorted(
    {"display", "operator", "integrator", "homeassistant", "history", "_athletes"} | acl_names()
)


@pytest.mark.parametrize("name", RESERVED)
def test_a_reserved_broker_user_is_refused_with_one_line(name):
    out = subprocess.run(
        [
            "bash",
            str(INSTALL),
            "--dry-run",
            "--broker",
            "--add-user",
            "bench-1",
            "--add-user",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1
    assert out.stderr.splitlines() == [out.stderr.strip()], out.stderr  # one line
    assert out.stderr.startswith(f"install.sh: --add-user {name}: "), out.stderr
    assert "not a station" in out.stderr or "a station id is" in out.stderr
    assert "mosquitto_passwd" not in out.stdout and "Debian packages" not in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus"], "unknown option --bogus"),
        (["--wheelhouse"], "--wheelhouse needs a value"),
        (["--broker", "--add-user", "display"], "that name is the broker's display user"),
        (["--broker", "--add-user", "bad name"], "a station id is letters, digits"),
        (["--ca", "/nonexistent/gym-ca.crt"], "no such file or folder: /nonexistent/gym-ca.crt"),
    ],
)
def test_bad_options_are_refused(args, message):
    out = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", *args], capture_output=True, text=True, check=False
    )
    assert out.returncode in (1, 2) and message in out.stderr, out.stderr


def test_uninstall_keeps_config_and_state_unless_purged():
    kept = "\n".join(steps("uninstall.sh"))
    assert "systemctl disable --now gym-monitor.service" in kept
    assert "rm -rf /opt/gym-monitor" in kept and "/var/lib/gym-monitor" not in kept
    purged = steps("uninstall.sh", "--purge")
    assert (
        "rm -rf /etc/gym-monitor /var/lib/gym-monitor" in purged and "userdel gym-monitor" in purged
    )
    assert "systemctl disable --now gym-history.service" in kept
    assert "gym-history" not in "\n".join(x for x in steps("uninstall.sh") if "rm -rf" in x)
    assert "rm -rf /var/lib/gym-history /var/lib/private/gym-history" in purged
    history = subprocess.run(
        ["bash", str(UNINSTALL), "--dry-run"], capture_output=True, text=True, check=True
    ).stdout
    assert "kept the history database (/var/lib/gym-history); --purge removes it" in history
    broker = "\n".join(steps("uninstall.sh", "--broker"))
    assert "rm -f /etc/mosquitto/conf.d/gym.conf /etc/mosquitto/gym.acl" in broker
    assert "gym-users" not in broker and "gym-users" in "\n".join(
        steps("uninstall.sh", "--broker", "--purge")
    )


# --------------------------------------------------------------------------- the locks


def pins(lock: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of requirements/<lock>.txt."""
    out: dict[str, tuple[str, int]] = {}
    name = None
    for line in (ROOT / "requirements" / f"{lock}.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^ ;]+) \\$", line)
        if m:
            name = canonicalize_name(m.group(1))
            out[name] = (m.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes = out[name]
            out[name] = (version, hashes + 1)
        elif not line.startswith(" "):
            name = None
    return out


def test_the_locks_pin_every_dependency_with_hashes():
    """requirements/*.txt are in step with pyproject.toml (else: bash requirements/lock.sh)."""
    station, display, build = pins("station"), pins("display"), pins("build")
    for lock in (station, display, build):
        assert lock and all(hashes >= 1 for _, hashes in lock.values()), lock
    for extra, lock in ((None, station), ("display", display)):
        wanted = PYPROJECT["project"]["dependencies"] + (
            PYPROJECT["project"]["optional-dependencies"][extra] if extra else []
        )
        for spec in map(Requirement, wanted):
            name = canonicalize_name(spec.name)
            if name == "numpy":  # Debian's python3-numpy (requirements/README.md)
                assert name not in lock
                assert spec.specifier.contains(BOOKWORM["numpy"]), spec
                continue
            assert name in lock, f"{name} is not in the lock: bash requirements/lock.sh"
            assert spec.specifier.contains(lock[name][0], prereleases=True), (spec, lock[name])
    assert set(station) <= set(display)
    # Built by what bookworm ships, and the [build-system] floor allows exactly that.
    assert {n: v for n, (v, _) in build.items()} == {
        "setuptools": BOOKWORM["setuptools"],
        "wheel": BOOKWORM["wheel"],
    }
    for spec in map(Requirement, PYPROJECT["build-system"]["requires"]):
        assert spec.specifier.contains(build[canonicalize_name(spec.name)][0]), spec
    assert station["setuptools"][0] == BOOKWORM["setuptools"]  # one setuptools in the venv


def wanted(extra: str | None) -> list[Requirement]:
    """What pyproject.toml asks for with ``extra``, the project's own extras it names expanded."""
    out = list(map(Requirement, PYPROJECT["project"]["dependencies"]))
    todo, seen = [extra] if extra else [], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in map(Requirement, PYPROJECT["project"]["optional-dependencies"][name]):
            if canonicalize_name(spec.name) == canonicalize_name(PYPROJECT["project"]["name"]):
                todo.extend(spec.extras)
            else:
                out.append(spec)
    return out


def test_the_history_lock_pins_its_extra_and_the_display_s():
    """requirements/history.txt: the history extra (and the display's it names), with hashes."""
    history, display = pins("history"), pins("display")
    assert history and all(hashes >= 1 for _, hashes in history.values()), history
    for spec in wanted("history"):
        name = canonicalize_name(spec.name)
        if name == "numpy":  # Debian's python3-numpy (requirements/README.md)
            assert name not in history
            continue
        assert name in history, f"{name} is not in the lock: bash requirements/lock.sh"
        assert spec.specifier.contains(history[name][0], prereleases=True), (spec, history[name])
    # A superset of the display's lock, at the same versions: one venv serves both.
    assert {n: v for n, (v, _) in display.items()} == {n: history[n][0] for n in display}
    assert {"sqlalchemy", "alembic", "psycopg", "psycopg-binary"} <= set(history)
    # The project itself is installed from the release, never from the lock (no hash there).
    text = (ROOT / "requirements" / "history.txt").read_text()
    assert " @ " not in text and "file://" not in text
    assert history["setuptools"][0] == BOOKWORM["setuptools"]


# --------------------------------------------------------------------------- for real


def _debian_python_ready() -> str | None:
    if not DEBIAN_PYTHON.exists():
        return "no /usr/bin/python3"
    probe = subprocess.run(
        [
            str(DEBIAN_PYTHON),
            "-c",
            "import sys, venv, ensurepip, numpy; print(sys.version_info[:2] == (3, 11))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.stdout.strip() != "True":
        return (
            "needs Debian's python3 3.11 with python3-venv and python3-numpy "
            "(bash .ci/setup test installs them)"
        )
    if not (WHEELHOUSE / "SHA256SUMS").exists():
        return (
            "no wheelhouse: bash .ci/setup test builds build/wheelhouse "
            "(requirements/wheelhouse.sh)"
        )
    return None


needs_pi_like_python = pytest.mark.skipif(
    _debian_python_ready() is not None, reason=_debian_python_ready() or ""
)


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHON": str(DEBIAN_PYTHON)}
    out = subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def in_venv(venv: Path, code: str) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@needs_pi_like_python
def test_offline_install_then_an_upgrade_that_keeps_config_and_state(tmp_path):
    root = tmp_path / "root"
    prefix, etc = root / "opt" / "gym-monitor", root / "etc" / "gym-monitor"
    # What the installer before releases left: a venv and the code in folders of their own.
    for old in ("venv/bin", "src/monitor"):
        (prefix / old).mkdir(parents=True)
    first = install(root, "--station", "--display", "--wheelhouse", str(WHEELHOUSE))
    assert (prefix / "venv").is_symlink() and not (prefix / "src").exists()
    wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants"
    venv = prefix / "venv"
    release1 = (prefix / "current").resolve()
    assert release1.parent == prefix / "releases" and venv.resolve() == release1 / "venv"
    assert (prefix / "README.md").resolve() == release1 / "README.md"
    assert (prefix / "hardware" / "wiring.md").is_file()  # the units' Documentation=
    assert not (release1 / "tests").exists() and not (release1 / ".venv").exists()

    # Built and run by what bookworm ships: its setuptools and wheel, its numpy.
    versions = json.loads(
        in_venv(
            venv,
            (
                "import json, setuptools, wheel, numpy, paho.mqtt, importlib.metadata as m;"
                "print(json.dumps({'setuptools': setuptools.__version__,"
                "'wheel': wheel.__version__,"
                "'numpy': numpy.__version__, 'numpy_from': numpy.__file__,"
                "'paho-mqtt': m.version('paho-mqtt'), 'project': m.version('gym-tremor-monitor')}))"
            ),
        )
    )
    assert (
        versions["setuptools"] == BOOKWORM["setuptools"] and versions["wheel"] == BOOKWORM["wheel"]
    )
    assert versions["numpy_from"].startswith("/usr/lib/python3/dist-packages/")
    assert versions["paho-mqtt"] == pins("station")["paho-mqtt"][0]
    assert versions["project"] == PYPROJECT["project"]["version"]
    # The analysis runs on Debian's numpy: 20 mg amplitude at 9 Hz is 14.1 mg RMS.
    rms, peak = in_venv(
        venv,
        (
            "import numpy as np; from monitor.analysis.tremor import analyze; fs = 200.0;"
            "t = np.arange(500) / fs; a = np.zeros((500, 3)); a[:, 2] = 9.81;"
            "a[:, 0] = 0.02 * 9.81 * np.sin(2 * np.pi * 9 * t); m = analyze(a, fs);"
            "print(round(m.rms_mg, 1), round(m.peak_hz, 1))"
        ),
    ).split()
    assert (float(rms), float(peak)) == (14.1, 9.0)

    # Not started: the config is the example's.
    assert (etc / "monitor.toml").read_bytes() == (ROOT / "config" / "monitor.toml").read_bytes()
    assert mode(etc / "monitor.toml") == 0o640
    assert "The station is installed but NOT started" in first.stdout
    assert 'still the example\'s "station-1"' in first.stdout
    assert not (wants / "gym-monitor.service").exists()
    # The display neither: no broker password, no staff (what its unit hands it is missing).
    assert "The display is installed but NOT started" in first.stdout
    assert "missing /etc/gym-monitor/display-mqtt.password" in first.stdout
    assert "missing /etc/gym-monitor/staff.json" in first.stdout
    assert (etc / "display.toml").read_bytes() == (ROOT / "config" / "display.toml").read_bytes()
    assert not (wants / "gym-display.service").exists()

    # The station's own config, its calibration in the state directory, and an old release.
    state = root / "var" / "lib" / "gym-monitor"
    state.mkdir(parents=True)
    (state / "scale-bottle.json").write_text('{"scale": 431.7}')
    config = (
        f'[station]\nid = "bench-7"\nsimulate = true\nstate_dir = "{state}"\n\n'
        '[[imu]]\nname = "wrist"\nchip = "mpu6050"\naddress = 0x68\nrate_hz = 250\n\n'
        "[mqtt]\nenabled = false\n"
    )
    (etc / "monitor.toml").write_text(config)
    (etc / "display-mqtt.password").write_text("pw\n")
    staff = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "staff",
            "--file",
            str(etc / "staff.json"),
            "add",
            "Coach Bo",
            "--stdin",
        ],
        input="correct horse\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert staff.returncode == 0, staff.stderr
    ancient = prefix / "releases" / "0.0.1-20000101T000000Z"
    ancient.mkdir()
    os.utime(ancient, (time.time() - 86400 * 365, time.time() - 86400 * 365))

    second = install(root, "--station", "--display", "--wheelhouse", str(WHEELHOUSE))
    assert 'checked, station "bench-7"' in second.stdout, second.stdout
    assert "NOT started" not in second.stdout, second.stdout
    assert (etc / "monitor.toml").read_text() == config  # kept
    assert (state / "scale-bottle.json").read_text() == '{"scale": 431.7}'
    release2 = (prefix / "current").resolve()
    assert release2 != release1 and release1.is_dir()  # the one before is kept
    assert not ancient.exists()  # older ones go
    if shutil.which("systemctl"):
        assert (wants / "gym-monitor.service").is_symlink()
        assert (wants / "gym-display.service").is_symlink()
    check = subprocess.run(
        [str(venv / "bin" / "gym-monitor"), "check-config", str(etc / "monitor.toml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    in_venv(venv, "import monitor.display")


@pytest.fixture
def broker_root(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None or broker_helpers.find_mosquitto_passwd() is None:
        pytest.skip("needs openssl and mosquitto_passwd (Debian: openssl, mosquitto)")
    return tmp_path / "root"


def test_the_broker_it_sets_up_takes_tls_with_its_own_ca(broker_root, tmp_path):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    root = broker_root
    first = install(root, "--broker", "--broker-name", "localhost", "--add-user", "bench-1")
    etc = root / "etc" / "mosquitto"
    assert mode(etc / "ca" / "gym-ca.key") == 0o600 and mode(etc / "ca") == 0o700
    assert mode(etc / "certs" / "broker.key") == 0o640 and mode(etc / "gym.passwd") == 0o640
    assert mode(etc / "gym-users") == 0o700
    users = ("display", "operator", "integrator", "homeassistant", "bench-1")
    assert [line.split(":")[0] for line in (etc / "gym.passwd").read_text().splitlines()] == list(
        users
    )
    assert all(mode(etc / "gym-users" / f"{u}.password") == 0o600 for u in users)
    assert "made the gym's CA" in first.stdout

    def secret(user: str) -> str:
        return (etc / "gym-users" / f"{user}.password").read_text().strip()

    # Again, with one more station: nothing made before changes.
    before = {
        p: p.read_bytes()
        for p in [
            etc / "certs" / "gym-ca.crt",
            etc / "certs" / "broker.crt",
            etc / "gym-users" / "display.password",
        ]
    }
    display_line = (etc / "gym.passwd").read_text().splitlines()[0]
    again = install(root, "--broker", "--broker-name", "localhost", "--add-user", "bench-2")
    assert all(p.read_bytes() == b for p, b in before.items())
    assert (etc / "gym.passwd").read_text().splitlines()[0] == display_line
    assert "kept" in again.stdout and (etc / "gym-users" / "bench-2.password").exists()

    if broker_helpers.find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    port, tls_port = broker_helpers.free_port(), broker_helpers.free_port()
    text = broker_helpers.localize(
        (etc / "conf.d" / "gym.conf").read_text(), root=root, port=port, tls_port=tls_port
    )

    def connect(host: str, port: int, user: str, tls: bool) -> list:
        results: list = []
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="x", protocol=mqtt.MQTTv5)
        c.username_pw_set(user, secret(user))
        if tls:
            c.tls_set(ca_certs=str(etc / "certs" / "gym-ca.crt"), cert_reqs=ssl.CERT_REQUIRED)
        c.on_connect = lambda cl, u, f, rc, p: results.append(rc.getName())
        try:
            c.connect(host, port, keepalive=10)
        except (OSError, ssl.SSLError) as err:
            return [type(err).__name__]
        deadline = time.monotonic() + 3
        while not results and time.monotonic() < deadline:
            c.loop(0.1)
        c.disconnect()
        return results

    with broker_helpers.MosquittoBroker(tmp_path / "run", config=text, port=port):
        assert connect("localhost", tls_port, "bench-2", tls=True) == ["Success"]
        assert connect("localhost", port, "display", tls=False) == ["Success"]  # this machine only
        assert connect("127.0.0.1", tls_port, "bench-1", tls=False) == []  # TLS port, no TLS
        assert connect("localhost", tls_port, "bench-1", tls=True) == ["Success"]


@needs_pi_like_python
def test_history_install_under_root_then_started_once_staff_exist(broker_root, tmp_path):
    """--station --history --broker for real: the history service's release, config, broker
    user and unit; a station named after a service user is refused; the service starts once
    every file its unit hands it exists, and its database is never touched."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    root = broker_root
    etc, mosq = root / "etc" / "gym-monitor", root / "etc" / "mosquitto"
    wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants"
    etc.mkdir(parents=True)
    # A station config that passes every other rule but takes the history service's name.
    (etc / "monitor.toml").write_text(
        '[station]\nid = "history"\nsimulate = true\n\n'
        '[[imu]]\nname = "wrist"\nchip = "mpu6050"\naddress = 0x68\nrate_hz = 250\n\n'
        "[mqtt]\nenabled = false\n"
    )
    database = root / "var" / "lib" / "gym-history" / "history.sqlite3"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"a year of sessions")
    first = install(
        root,
        "--station",
        "--history",
        "--broker",
        "--broker-name",
        "localhost",
        "--wheelhouse",
        str(WHEELHOUSE),
    )
    refused = (
        '[station] id "history" is the broker\'s history user, not a station: '
        "give this station an id of its own"
    )
    assert refused in first.stdout, first.stdout
    assert not (wants / "gym-monitor.service").exists()

    # The release has the history extra, at the versions its lock pins.
    venv = root / "opt" / "gym-monitor" / "venv"
    versions = json.loads(
        in_venv(
            venv,
            "import json, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in "
            "('sqlalchemy', 'alembic', 'psycopg', 'psycopg-binary', 'aiohttp')}))",
        )
    )
    history_pins = pins("history")
    assert versions == {n: history_pins[n][0] for n in versions}
    in_venv(venv, "import monitor.history.service, monitor.display, gpiozero")

    # Its config: the example's, naming the credentials its unit hands over.
    config = etc / "history.toml"
    assert mode(config) == 0o640
    installed = tomllib.loads(config.read_text())
    example = tomllib.loads((ROOT / "config" / "history.toml").read_text())
    run_dir = "/run/credentials/gym-history.service"
    assert installed["mqtt"].pop("username") == "history"
    assert installed["mqtt"].pop("password_file") == f"{run_dir}/mqtt-password"
    assert installed["web"].pop("staff_file") == f"{run_dir}/staff.json"
    for key, table in (("username", "mqtt"), ("password_file", "mqtt"), ("staff_file", "web")):
        example[table].pop(key)
    assert installed == example
    handed = credentials(root / "etc" / "systemd" / "system" / "gym-history.service")
    assert {"history.toml", "mqtt-password", "staff.json"} == set(handed)
    assert (root / "etc/systemd/system/gym-history.service").read_bytes() == (
        HISTORY_UNIT.read_bytes()
    )

    # The broker's user "history", its password handed to the service on this machine.
    password = etc / "history-mqtt.password"
    assert mode(password) == 0o600
    assert password.read_text() == (mosq / "gym-users" / "history.password").read_text()
    assert "history" in [x.split(":")[0] for x in (mosq / "gym.passwd").read_text().splitlines()]

    # Not started: the staff file (the display's accounts) is missing.
    assert "The history service is installed but NOT started" in first.stdout
    assert "missing /etc/gym-monitor/staff.json" in first.stdout
    assert "missing /etc/gym-monitor/history-mqtt.password" not in first.stdout
    assert not (wants / "gym-history.service").exists()

    # The installed release migrates a database of its own (SQLite, Alembic).
    state = tmp_path / "state"
    state.mkdir()
    local = config.read_text().replace(
        'state_dir = "/var/lib/gym-history"', f'state_dir = "{state}"'
    )
    (tmp_path / "history.toml").write_text(local)
    migrate = subprocess.run(
        [
            str(venv / "bin" / "gym-monitor"),
            "history",
            "--config",
            str(tmp_path / "history.toml"),
            "migrate",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "up to date" in migrate.stdout and (state / "history.sqlite3").stat().st_size > 0

    # The password it was given opens the broker as the ACL's history user: it may write an
    # athlete's card and read it back (a denied publish is never delivered).
    if broker_helpers.find_mosquitto() is not None:
        port, tls_port = broker_helpers.free_port(), broker_helpers.free_port()
        text = broker_helpers.localize(
            (mosq / "conf.d" / "gym.conf").read_text(), root=root, port=port, tls_port=tls_port
        )
        got: list[bytes] = []
        subscribed: list[object] = []
        with broker_helpers.MosquittoBroker(tmp_path / "run", config=text, port=port):
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="x", protocol=mqtt.MQTTv5)
            c.username_pw_set("history", password.read_text().strip())
            c.on_subscribe = lambda cl, u, mid, codes, props: subscribed.extend(codes)
            c.on_message = lambda cl, u, msg: got.append(msg.payload)

            def pump(done) -> None:
                deadline = time.monotonic() + 3
                while not done() and time.monotonic() < deadline:
                    c.loop(0.1)

            c.connect("127.0.0.1", port, keepalive=10)
            c.subscribe("gym/_athletes/+/card", qos=1)
            pump(lambda: subscribed)
            c.publish("gym/_athletes/a1/card", b"Sam", qos=1)
            pump(lambda: got)
            c.disconnect()
        assert got == [b"Sam"]

    # With the staff file, the same installer starts it; config and database stay.
    staff = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "staff",
            "--file",
            str(etc / "staff.json"),
            "add",
            "Coach Bo",
            "--stdin",
        ],
        input="correct horse\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert staff.returncode == 0, staff.stderr
    # A file the service's own user could not read (/etc/gym-monitor is not its) holds it back.
    config_before = config.read_bytes()
    config.write_text(
        config_before.decode().replace('tls_ca = ""', 'tls_ca = "/etc/gym-monitor/gym-ca.crt"')
    )
    held = install(root, "--history", "--wheelhouse", str(WHEELHOUSE))
    assert "The history service is installed but NOT started" in held.stdout
    assert "mqtt.tls_ca: /etc/gym-monitor/gym-ca.crt is not readable by the service" in held.stdout
    assert not (wants / "gym-history.service").exists()
    config.write_bytes(config_before)
    second = install(root, "--history", "--wheelhouse", str(WHEELHOUSE))
    assert f"keeping the existing {etc}/history.toml" in second.stdout
    assert "The history service is installed but NOT started" not in second.stdout, second.stdout
    assert config.read_bytes() == config_before
    assert database.read_bytes() == b"a year of sessions"
    if shutil.which("systemctl"):
        assert (wants / "gym-history.service").is_symlink()
