"""The display's TOML config and options: every mistake is one line naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.display.config import DisplayConfig, build_parser, config_from_args, load_config
from monitor.display.service import main
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

# (TOML text, the key the error must name)
BROKEN = [
    ("[http]\nport = 80800\n", "http.port"),
    ('[http]\nport = "8080"\n', "http.port"),
    ('[http]\nhost = "not a host!"\n', "http.host"),
    ('[http]\nallowed_hosts = "gym.local"\n', "http.allowed_hosts"),
    ('[http]\nallowed_hosts = ["ok.local", "bad name"]\n', "http.allowed_hosts[1]"),
    ("[http]\nallowed_hosts = [42]\n", "http.allowed_hosts[0]"),
    ("[http]\nmax_streams = 0\n", "http.max_streams"),
    ("[http]\nmax_streams = 1e9\n", "http.max_streams"),
    ("[http]\nidle_timeout_s = nan\n", "http.idle_timeout_s"),
    ("[http]\nidle_timeout_s = inf\n", "http.idle_timeout_s"),
    ('[http]\ntls_cert = "/nonexistent.pem"\ntls_key = "/nonexistent.key"\n', "http.tls_cert"),
    ("[http]\nportt = 8080\n", "http.portt"),
    ("[staff]\nsession_idle_s = 5\n", "staff.session_idle_s"),
    ("[staff]\nsession_idle_s = 7200\nsession_max_s = 3600\n", "staff.session_idle_s"),
    ('[staff]\nsecure_cookies = "yes"\n', "staff.secure_cookies"),
    ("[staff]\nlogin_failures_per_client = 0\n", "staff.login_failures_per_client"),
    ('[staff]\nfile = ""\n', "staff.file"),
    ('[board]\nstations = ["bench 1"]\n', "board.stations[0]"),
    ('[board]\nstations = ["a", "b"]\nmax_stations = 2\n', "board.max_stations"),
    ("[board]\nevict_after_s = -1\n", "board.evict_after_s"),
    ("[board]\nack_timeout_s = 0\n", "board.ack_timeout_s"),
    ("[board]\nstale_after_s = true\n", "board.stale_after_s"),
    ("[mqtt]\nport = 0\n", "mqtt.port"),
    ('[mqtt]\nprefix = "gym/#"\n', "mqtt.prefix"),
    ('[mqtt]\npassword = "hunter2"\n', "mqtt.password"),
    ('[mqtt]\npassword_file = "/nonexistent"\nusername = "display"\n', "mqtt.password_file"),
    ('[mqtt]\ntls_ca = "/nonexistent/ca.crt"\n', "mqtt.tls_ca"),
    ('[mqtt]\ntls_cert = "/etc/hostname"\n', "mqtt.tls_cert"),
    ("http = 3\n", "http"),
    ("[boardd]\n", "boardd"),
]


@pytest.mark.parametrize("text,key", BROKEN, ids=[k for _, k in BROKEN])
def test_a_broken_file_names_the_key(tmp_path, capsys, text, key):
    path = tmp_path / "display.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert key in str(err.value)
    # Through the command line: exit 2 and exactly one line, no traceback.
    assert main(["--config", str(path)]) == 2
    out = capsys.readouterr().err
    assert out.count("\n") == 1 and key in out and str(path) in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "make", ["missing", "directory", "fifo", "dev_zero", "not_utf8", "not_toml", "huge"]
)
def test_a_file_that_is_not_a_config_is_one_line(tmp_path, make):
    path = tmp_path / "display.toml"
    if make == "directory":
        path.mkdir()
    elif make == "fifo":
        os.mkfifo(path)
    elif make == "dev_zero":
        path = Path("/dev/zero")
    elif make == "not_utf8":
        path.write_bytes(b'[http]\nhost = "\xff\xfe"\n')
    elif make == "not_toml":
        path.write_text("[http\nport = 1\n")
    elif make == "huge":
        path.write_text("# padding\n" * 40_000)
    # A subprocess with a timeout: a FIFO must not hang the display.
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.display", "--config", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=20,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and str(path) in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_shipped_example_is_valid_and_documents_every_key():
    config = load_config(REPO / "config" / "display.toml")
    assert config.http_host == "127.0.0.1"  # loopback unless the gym says otherwise
    assert config.staff_file == "/etc/gym-monitor/staff.json"
    text = (REPO / "config" / "display.toml").read_text()
    for key in (
        "host",
        "port",
        "allowed_hosts",
        "allow_ip_hosts",
        "tls_cert",
        "tls_key",
        "idle_timeout_s",
        "max_streams",
        "max_streams_per_client",
        "file",
        "session_idle_s",
        "session_max_s",
        "secure_cookies",
        "login_failures_per_client",
        "login_failures_per_name",
        "login_window_s",
        "stations",
        "max_stations",
        "evict_after_s",
        "ack_timeout_s",
        "stale_after_s",
        "prefix",
        "username",
        "password_file",
        "tls_ca",
    ):
        assert f"\n{key} =" in text or f"\n# {key} =" in text, key


def test_options_win_over_the_file(tmp_path):
    path = tmp_path / "display.toml"
    path.write_text(
        '[http]\nhost = "0.0.0.0"\nport = 8081\nallowed_hosts = ["gym.lan"]\n'
        '[board]\nstations = ["bench-1", "rack-2"]\nevict_after_s = 0\n'
        '[staff]\nfile = "/srv/staff.json"\n'
    )
    args = build_parser().parse_args(
        ["--config", str(path), "--http-port", "9090", "--staff-file", "/run/credentials/staff"]
    )
    config = config_from_args(args)
    assert (config.http_host, config.http_port) == ("0.0.0.0", 9090)
    assert config.staff_file == "/run/credentials/staff"
    assert config.stations == ("bench-1", "rack-2") and config.evict_after_s == 0
    assert "gym.lan" in config.host_names() and "evil.example" not in config.host_names()


def test_defaults_are_loopback_with_this_machines_names():
    config = DisplayConfig()
    assert config.http_host == "127.0.0.1"
    names = config.host_names()
    assert {"localhost", "127.0.0.1"} <= names


def test_the_prefix_and_station_ids_follow_the_stations_rules(tmp_path):
    """One rule for a topic prefix and a station id: the topics module's, as the station uses."""
    from monitor.mqtt.topics import TopicError, validate_prefix, validate_station_id

    path = tmp_path / "display.toml"
    for prefix in ("gym", "chain/gym-a", "/gym/", "gym/#", "$SYS/gym", "a//b", "+"):
        path.write_text(f'[mqtt]\nprefix = "{prefix}"\n')
        try:
            want = validate_prefix(prefix)
        except TopicError:
            with pytest.raises(ConfigError, match=r"mqtt\.prefix"):
                load_config(path)
        else:
            assert load_config(path).prefix == want
    for station in ("bench-1", "_athletes", "-x", "x" * 65):
        path.write_text(f'[board]\nstations = ["{station}"]\n')
        try:
            validate_station_id(station)
        except TopicError:
            with pytest.raises(ConfigError, match=r"board.stations\[0\]"):
                load_config(path)
        else:
            assert load_config(path).stations == (station,)


def test_the_password_file_is_read_as_the_station_reads_it(tmp_path):
    path = tmp_path / "display.toml"
    secret = tmp_path / "mqtt-password"
    secret.write_text("hunter2\n")
    secret.chmod(0o600)
    path.write_text(f'[mqtt]\nusername = "display"\npassword_file = "{secret}"\n')
    assert load_config(path).password == "hunter2"
    secret.write_text("two\nlines\n")
    with pytest.raises(ConfigError, match=r"mqtt\.password_file.*one line"):
        load_config(path)


def test_the_login_cookie_is_named_in_the_file(tmp_path):
    path = tmp_path / "display.toml"
    assert load_config(REPO / "config" / "display.toml").session_cookie == "gym_staff"
    path.write_text('[staff]\ncookie_name = "gym_wall_2"\n')
    assert load_config(path).session_cookie == "gym_wall_2"
    path.write_text('[staff]\ncookie_name = "a;b"\n')
    with pytest.raises(ConfigError, match=r"staff\.cookie_name"):
        load_config(path)
    assert "\ncookie_name =" in (REPO / "config" / "display.toml").read_text()
