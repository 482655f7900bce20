"""Staff accounts: the file, its hashes, and ``gym-monitor staff`` as a person or script uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.display.staff import StaffDirectory, StaffError, StaffFile, read_staff

REPO = Path(__file__).resolve().parents[1]


def gym(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args],
        input=stdin,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_accounts_are_argon2_hashes_in_a_private_file(tmp_path):
    path = tmp_path / "etc" / "staff.json"
    StaffFile(path).add("Alice", "493817")
    assert os.stat(path).st_mode & 0o777 == 0o600
    text = path.read_text()
    assert "493817" not in text
    entry = json.loads(text)["staff"][0]
    assert entry["name"] == "Alice" and entry["hash"].startswith("$argon2id$")
    directory = StaffDirectory(path)
    assert directory.verify("alice", "493817") == "Alice"  # names are case-blind
    assert directory.verify("Alice", "493818") is None
    assert directory.verify("Mallory", "493817") is None


def test_names_and_pins_are_checked(tmp_path):
    store = StaffFile(tmp_path / "staff.json")
    for bad in ("", " ", "x" * 65, "a\nb", "<script>", "-dash-first"):
        with pytest.raises(StaffError):
            store.add(bad, "493817")
    for bad_pin in ("12345", "x" * 129, "1234\x0056"):
        with pytest.raises(StaffError):
            store.add("Bo", bad_pin)
    store.add("Bo", "123456")
    with pytest.raises(StaffError, match="already has an account"):
        store.add("BO", "654321")
    store.add("bo", "654321", replace=True)
    assert StaffDirectory(store.path).verify("Bo", "654321") == "bo"


def test_the_display_rereads_a_changed_file(tmp_path, monkeypatch):
    path = tmp_path / "staff.json"
    directory = StaffDirectory(path)  # no file yet: nobody can log in, nothing crashes
    assert directory.count == 0 and directory.verify("Alice", "493817") is None
    monkeypatch.setattr(StaffDirectory, "RECHECK_S", 0.0)
    StaffFile(path).add("Alice", "493817")
    assert directory.exists("ALICE") and directory.verify("Alice", "493817") == "Alice"
    StaffFile(path).remove("alice")
    assert not directory.exists("Alice")
    path.write_text("{not json")
    assert directory.count == 0  # a broken file is nobody, logged once


@pytest.mark.parametrize(
    "content",
    ["[]", '{"v": 2, "staff": []}', '{"v": 1, "staff": [{"name": "a", "hash": "plain"}]}'],
)
def test_a_file_that_is_not_a_staff_file_is_refused(tmp_path, content):
    path = tmp_path / "staff.json"
    path.write_text(content)
    with pytest.raises(StaffError):
        read_staff(path)


def test_the_command_line_for_scripts_and_people(tmp_path):
    path = tmp_path / "staff.json"
    f = ["staff", "--file", str(path)]
    done = gym(*f, "add", "Coach Bo", "--stdin", stdin="correct horse\n")
    assert done.returncode == 0 and "Coach Bo can now log in" in done.stdout
    done = gym(*f, "add", "Dan", stdin="12\n")  # not a terminal: read from stdin
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "6 to 128" in done.stderr
    assert gym(*f, "add", "Dan", stdin="246810\n").returncode == 0
    listed = gym(*f, "list")
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["Coach Bo", "Dan"]
    assert "correct horse" not in path.read_text()
    assert gym(*f, "remove", "coach bo").returncode == 0
    gone = gym(*f, "remove", "Coach Bo")
    assert gone.returncode == 1 and "no account named" in gone.stderr
    for target in (tmp_path, Path("/dev/zero")):
        broken = gym("staff", "--file", str(target), "list")
        assert broken.returncode == 1 and broken.stderr.count("\n") == 1
        assert "Traceback" not in broken.stderr


@pytest.mark.parametrize("second_cookie, both_kept", [("gym_coach", True), ("gym_staff", False)])
def test_two_servers_on_one_host_keep_their_logins_apart(tmp_path, second_cookie, both_kept):
    """Browsers send a host's cookies to every port: the wall (8080) and the coach's pages
    (8081) share the login code, so each must name its cookie; with one name the second
    login would end the first."""
    import asyncio

    from aiohttp import ClientSession, CookieJar, web

    from monitor.display.auth import StaffAuth
    from monitor.display.config import DisplayConfig

    path = tmp_path / "staff.json"
    StaffFile(path).add("Alice", "493817")

    async def run() -> list[str | None]:
        runners, auths, urls = [], [], []
        try:
            for cookie in (DisplayConfig().session_cookie, second_cookie):
                auth = StaffAuth(DisplayConfig(session_cookie=cookie), StaffDirectory(path))
                app = web.Application()
                auth.add_routes(app)
                runner = web.AppRunner(app)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                runners.append(runner)
                auths.append(auth)
                urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
            async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as browser:
                for url in urls:
                    login = {"name": "Alice", "pin": "493817"}
                    async with browser.post(f"{url}/api/login", json=login) as reply:
                        assert reply.status == 200
                names = []
                for url in urls:
                    async with browser.get(f"{url}/api/me") as reply:
                        names.append((await reply.json())["name"])
                return names
        finally:
            for runner in runners:
                await runner.cleanup()
            for auth in auths:
                auth.close()

    names = asyncio.run(run())
    assert names == (["Alice", "Alice"] if both_kept else [None, "Alice"])
