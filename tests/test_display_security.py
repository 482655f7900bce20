"""Attacks on the display's acknowledge path: real service, real Mosquitto, real Chromium.

Nobody may silence an alert but a logged-in staff member on the display's own
page: not an unauthenticated script, not a page on another origin (a form or a
fetch), not a DNS-rebinding page whose Host and Origin agree with each other,
not a request without the session's CSRF token, and not a second request
hidden in the unread body of a refused one on a kept-alive connection. Each
test checks that nothing at all reached ``cmd/ack`` on the broker.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from monitor.display.staff import StaffFile
from tests.support.display import (
    CHROMIUM,
    CHROMIUM_ARGS,
    STAFF_NAME,
    STAFF_PIN,
    AckListener,
    HttpClient,
    expect,
    login,
    wait_active,
)

# The fake stations, the service, Chromium and the broker, as fixtures.
pytest_plugins = ["tests.support.display"]

ALERT = "bench-1:1732435200:0001"


@pytest.fixture
def listener(mosquitto) -> Iterator[AckListener]:
    acks = AckListener(mosquitto)
    yield acks
    acks.close()


@pytest.fixture
def fall(display, stations):
    """bench-1 online with an urgent fall on the board."""
    st = stations("bench-1")
    st.active(
        [st.alert(ALERT, "urgent", "Possible fall or faint", red_flag=True, code="redflag.fall")]
    )
    wait_active(display, "bench-1", ALERT)
    return st


def nothing_published(listener: AckListener, wait: float = 0.5) -> None:
    with pytest.raises(queue.Empty):
        listener.get(timeout=wait)


# --------------------------------------------------------------------------- HTTP, a script


def test_an_unauthenticated_ack_is_refused(display, fall, listener):
    client = HttpClient(display)
    status, _, body = client.ack("bench-1", ALERT)
    assert status == 401 and "log in" in body["error"]
    nothing_published(listener)


def test_an_ack_needs_the_sessions_csrf_token(display, fall, listener):
    client = HttpClient(display)
    client.login()
    assert client.ack("bench-1", ALERT, **{"X-CSRF-Token": ""})[0] == 403
    client2 = HttpClient(display)
    client2.login()  # a second session: its token is not the first one's
    assert client.ack("bench-1", ALERT, **{"X-CSRF-Token": client2.csrf})[0] == 403
    nothing_published(listener)

    status, _, body = client.ack("bench-1", ALERT)
    assert status == 202 and body["state"] == "waiting" and body["by"] == STAFF_NAME
    topic, payload, qos = listener.get()
    assert (topic, qos) == ("gym/bench-1/cmd/ack", 1)
    assert payload == {"v": 1, "id": ALERT, "by": STAFF_NAME, "request_id": body["request_id"]}


def test_cross_origin_cross_site_and_non_json_acks_are_refused(display, fall, listener):
    client = HttpClient(display)
    client.login()
    assert client.ack("bench-1", ALERT, Origin="http://evil.example")[0] == 403
    assert client.ack("bench-1", ALERT, Origin="null")[0] == 403
    assert client.ack("bench-1", ALERT, **{"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert client.ack("bench-1", ALERT, **{"Sec-Fetch-Site": "same-site"})[0] == 403
    status, _, _ = client.request(
        "POST",
        "/api/ack",
        json.dumps({"station": "bench-1", "id": ALERT}).encode(),
        {"Content-Type": "text/plain", "X-CSRF-Token": client.csrf},
    )
    assert status == 415
    nothing_published(listener)
    # The same client, same origin, is fine.
    origin = f"http://127.0.0.1:{display.port}"
    assert (
        client.ack("bench-1", ALERT, Origin=origin, **{"Sec-Fetch-Site": "same-origin"})[0] == 202
    )
    assert listener.get()[1]["by"] == STAFF_NAME


def test_a_dns_rebinding_request_is_refused(display, fall, listener):
    # The attacker's name resolves to this machine: Host and Origin agree with each other.
    evil = f"rebind.attacker.example:{display.port}"
    client = HttpClient(display)
    client.login()
    rebound = HttpClient(display, host=evil)
    rebound.cookie, rebound.csrf = client.cookie, client.csrf
    assert rebound.request("GET", "/")[0] == 421
    assert rebound.request("GET", "/api/state")[0] == 421  # alert ids stay private too
    assert rebound.ack("bench-1", ALERT, Origin=f"http://{evil}")[0] == 421
    assert (
        rebound.request(
            "POST",
            "/api/login",
            {"name": STAFF_NAME, "pin": STAFF_PIN},
            {"Origin": f"http://{evil}"},
        )[0]
        == 421
    )
    nothing_published(listener)
    assert HttpClient(display, host=f"localhost:{display.port}").request("GET", "/")[0] == 200


def _raw_exchange(port: int, data: bytes, wait: float = 2.0) -> bytes:
    """Send bytes on one connection; read until the server closes it or ``wait`` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
    return received


def test_a_request_hidden_in_a_refused_body_is_never_run(display, fall, listener):
    """The issue's smuggling case: a refused request's body holds a whole second request."""
    client = HttpClient(display)
    client.login()
    host = f"127.0.0.1:{display.port}"
    inner_body = json.dumps({"station": "bench-1", "id": ALERT}).encode()
    inner = (
        f"POST /api/ack HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Cookie: {client.cookie}\r\nX-CSRF-Token: {client.csrf}\r\n"
        f"Content-Length: {len(inner_body)}\r\n\r\n"
    ).encode() + inner_body
    for outer_headers in (
        "Content-Type: text/plain\r\n",  # wrong type
        "Content-Type: application/json\r\nOrigin: http://evil.example\r\n",  # other origin
        "Content-Type: application/json\r\n",  # no session
    ):
        outer = (
            f"POST /api/ack HTTP/1.1\r\nHost: {host}\r\n{outer_headers}"
            f"Connection: keep-alive\r\nContent-Length: {len(inner)}\r\n\r\n"
        ).encode()
        reply = _raw_exchange(display.port, outer + inner)
        assert reply.count(b"HTTP/1.1 ") == 1, reply[:400]
        assert reply.startswith((b"HTTP/1.1 415", b"HTTP/1.1 403", b"HTTP/1.1 401"))
    # Pipelined without a body at all (the second request is on the wire, not in a body).
    outer = (
        f"POST /api/ack HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()
    reply = _raw_exchange(display.port, outer + inner)
    assert reply.count(b"HTTP/1.1 ") == 1, reply[:400]
    # An oversized body is refused without being read to the end.
    big = b"x" * 100_000
    outer = (
        f"POST /api/ack HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Cookie: {client.cookie}\r\nX-CSRF-Token: {client.csrf}\r\n"
        f"Content-Length: {len(big) + len(inner)}\r\n\r\n"
    ).encode()
    reply = _raw_exchange(display.port, outer + big + inner)
    assert reply.count(b"HTTP/1.1 ") == 1 and reply.startswith(b"HTTP/1.1 413"), reply[:200]
    nothing_published(listener, 1.0)
    assert display.call(display.board.is_active, "bench-1", ALERT)


def test_logins_are_rate_limited(display_factory, staff_file):
    display = display_factory(
        login_failures_per_client=3, login_failures_per_name=5, login_window_s=60
    )
    client = HttpClient(display)
    for _ in range(3):
        status, _, body = client.request(
            "POST", "/api/login", {"name": STAFF_NAME, "pin": "000000"}
        )
        assert status == 401 and body["error"] == "wrong name or PIN"
    status, headers, body = client.request(
        "POST", "/api/login", {"name": STAFF_NAME, "pin": STAFF_PIN}
    )
    assert status == 429 and int(headers["Retry-After"]) >= 1  # even the right PIN waits
    assert "too many failed logins" in body["error"]
    # An unknown name costs the same and counts the same.
    t0 = time.monotonic()
    other = HttpClient(display, host=f"localhost:{display.port}")
    assert other.request("POST", "/api/login", {"name": "nobody", "pin": "123456"})[0] == 429
    assert time.monotonic() - t0 < 1.0  # refused before any hash is computed


def test_the_session_cookie_and_its_end(display_factory, staff_file, stations, mosquitto):
    display = display_factory(session_idle_s=1.0)
    client = HttpClient(display)
    status, headers, _ = client.request("POST", "/api/login", {"name": "alice", "pin": STAFF_PIN})
    assert status == 200
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would be lost
    assert client.request("GET", "/api/me")[2]["name"] == STAFF_NAME  # case-blind name
    time.sleep(1.3)
    assert client.request("GET", "/api/me")[2]["name"] is None  # idle too long

    client.login()
    assert client.request("POST", "/api/logout", {}, {"X-CSRF-Token": client.csrf})[0] == 200
    assert client.request("GET", "/api/me")[2]["name"] is None

    client.login()
    StaffFile(staff_file).remove(STAFF_NAME)
    time.sleep(2.2)  # the display rereads the file at most every 2 s
    assert client.request("GET", "/api/me")[2]["name"] is None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_over_tls_the_cookie_is_secure(display_factory, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    display = display_factory(http_tls_cert=str(cert), http_tls_key=str(key))
    assert display.url.startswith("https://")
    import http.client
    import ssl

    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", display.port, context=context, timeout=10)
    conn.request(
        "POST",
        "/api/login",
        json.dumps({"name": STAFF_NAME, "pin": STAFF_PIN}),
        {"Content-Type": "application/json"},
    )
    reply = conn.getresponse()
    assert reply.status == 200
    assert "Secure" in reply.getheader("Set-Cookie")
    conn.close()


# --------------------------------------------------------------------------- Chromium


class _AttackerSite:
    """A second local web server: a hostile page on another origin."""

    def __init__(self, page_html: str):
        body = page_html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _attack_page(target: str) -> str:
    body = json.dumps({"station": "bench-1", "id": ALERT})
    # A text/plain form whose one field name and value together read as JSON,
    # the classic way to post JSON-looking bodies across sites; and fetch()es.
    name, value = body[:-2] + ',"x":"', '"}'
    return f"""<!doctype html><html><body>
<form id="f" method="POST" action="{target}api/ack" enctype="text/plain">
<input name='{name}' value='{value}'></form>
<script>
window.results = [];
async function go() {{
  for (const [ctype, mode] of [["text/plain", "no-cors"], ["application/json", "cors"]]) {{
    try {{
      const r = await fetch("{target}api/ack", {{method: "POST", mode, credentials: "include",
        headers: {{"Content-Type": ctype}}, body: {json.dumps(body)}}});
      window.results.push(ctype + " " + r.status);
    }} catch (e) {{ window.results.push(ctype + " blocked"); }}
  }}
  window.done = true;
  setTimeout(() => document.getElementById("f").submit(), 100);
}}
go();
</script></body></html>"""


def test_login_then_ack_in_chromium_and_another_origin_cannot(display, fall, new_page, listener):
    page = new_page(display.url)
    banner = page.locator(".banner")
    expect(banner).to_have_count(1)
    page.locator("#staff-login").click()
    login(page)  # the session cookie is now in this browser

    for attacker_host in ("127.0.0.1", "localhost"):  # same site, other port; another site
        site = _AttackerSite(_attack_page(display.url))
        try:
            evil = page.context.new_page()
            evil.goto(f"http://{attacker_host}:{site.port}/")
            # The fetches run first, then the form submits and navigates to the refusal.
            evil.wait_for_url(f"{display.url}api/ack")
            assert "refused" in evil.content() or "send application/json" in evil.content()
            evil.close()
        finally:
            site.close()
        nothing_published(listener, 0.5)
    assert display.call(display.board.is_active, "bench-1", ALERT)

    # The real page, same browser, same cookie: the ack goes out with the name.
    banner.locator("button.ack").click()
    topic, payload, _ = listener.get()
    assert (topic, payload["id"], payload["by"]) == ("gym/bench-1/cmd/ack", ALERT, STAFF_NAME)


def test_a_dns_rebinding_page_in_chromium_is_refused(display, fall, listener, browser):
    # Chromium resolves the attacker's name to this machine, as a rebinding DNS server would.
    args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1"]
    chromium = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=args)
    try:
        page = chromium.new_page()
        evil = f"http://rebind.attacker.test:{display.port}/"
        reply = page.goto(evil)
        assert reply.status == 421
        status = page.evaluate(f"""async () => (await fetch("{evil}api/ack", {{
            method: "POST", headers: {{"Content-Type": "application/json"}},
            body: JSON.stringify({{station: "bench-1", id: "{ALERT}"}})}})).status""")
        assert status == 421
    finally:
        chromium.close()
    nothing_published(listener)


def test_the_login_page_returns_only_to_this_site(display, new_page):
    for target, lands in (
        ("/?from=login", "?from=login"),
        ("//evil.example/x", ""),
        ("https://evil.example/", ""),
    ):
        page = new_page(f"{display.url}login?next={target}")
        page.locator("#login-name").fill(STAFF_NAME)
        page.locator("#login-pin").fill(STAFF_PIN)
        page.locator(".login-submit").click()
        page.wait_for_url(f"{display.url}{lands}")
        expect(page.locator("#staff-name")).to_have_text(f"Staff: {STAFF_NAME}")
    page = new_page(f"{display.url}login")
    page.locator("#login-name").fill(STAFF_NAME)
    page.locator("#login-pin").fill("000000")
    page.locator(".login-submit").click()
    expect(page.locator("#login-error")).to_have_text("wrong name or PIN")


def test_staff_pages_send_others_to_the_login(display):
    """What the coach's pages will use: ``StaffAuth.staff_page`` on a GET handler."""
    from aiohttp import web

    @display.auth.staff_page
    async def secret(request):
        return web.Response(text="for staff")

    async def probe(cookie: str | None) -> tuple[int, str, str]:
        request = type("R", (), {})()  # the decorator reads cookies and path_qs only
        request.cookies = {"gym_staff": cookie} if cookie else {}
        request.path_qs = "/history/athlete?id=A12"
        try:
            reply = await secret(request)
        except web.HTTPSeeOther as redirect:
            return redirect.status, redirect.location, ""
        return reply.status, "", reply.text

    def on_loop(cookie: str | None) -> tuple[int, str, str]:
        return asyncio.run_coroutine_threadsafe(probe(cookie), display.loop).result(5)

    status, location, _ = on_loop(None)
    assert (status, location) == (303, "/login?next=/history/athlete%3Fid%3DA12")
    client = HttpClient(display)
    client.login()
    token = client.cookie.split("=", 1)[1]
    status, _, text = on_loop(token)
    assert (status, text) == (200, "for staff")
