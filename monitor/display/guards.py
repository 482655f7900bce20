"""Request hygiene for the display's web side: who may ask, from where, for what.

One aiohttp middleware, :func:`guard_middleware`, applies to every request:

* the ``Host`` header must be an IP literal or one of the configured names,
  so a DNS-rebinding page (a hostile name pointed at this machine) is refused
  even though its Origin and Host agree with each other;
* a request that changes anything (any method but GET/HEAD) must come from
  this origin: ``Origin`` equal to ``<scheme>://<Host>`` when present,
  ``Sec-Fetch-Site: same-origin`` when present, and a JSON body (a cross-site
  form cannot send one, and this server grants no CORS preflight);
* every answer carries the security headers (a strict CSP, no framing, no
  sniffing, no referrer);
* a refused request gets its answer and the connection is closed, so a body
  left unread can never be parsed as a second request.

The staff login (:mod:`monitor.display.auth`) and any page added later (the
coach's history pages) sit behind the same middleware by being routes of the
same application.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from .config import DisplayConfig, normalise_host

log = logging.getLogger(__name__)

# Everything comes from this server; nothing inline, nothing from elsewhere.
# (Styles set through the CSSOM, e.g. element.style.setProperty, are allowed by
# style-src 'self'; only style attributes written as markup would need 'unsafe-inline'.)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
SAFE_METHODS = ("GET", "HEAD")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refuse(status: int, message: str, *, close: bool = True) -> web.Response:
    """A JSON error answer; by default the connection closes after it."""
    response = web.json_response({"ok": False, "error": message}, status=status)
    if close:
        response.force_close()
    return response


def host_of(host_header: str) -> str:
    """``name:port`` / ``[v6]:port`` -> the bare host, lower case."""
    host = host_header.strip()
    if host.startswith("["):
        return normalise_host(host[1:].partition("]")[0])
    name, _, _ = host.partition(":") if host.count(":") == 1 else (host, "", "")
    return normalise_host(name)


class HostPolicy:
    """Which ``Host`` headers this display answers to."""

    def __init__(self, config: DisplayConfig):
        self.names = config.host_names()
        self.allow_ip = config.allow_ip_hosts

    def allows(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        host = host_of(host_header)
        if host in self.names:
            return True
        if not self.allow_ip:
            return False
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        # An IP literal is what the browser itself connected to: no name to rebind.
        return True


def same_origin_problem(request: web.Request) -> str | None:
    """Why a state-changing request does not look same-origin, or None."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return f"cross-site request refused (Sec-Fetch-Site: {site[:20]})"
    origin = request.headers.get("Origin")
    if origin is not None:
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or parts.netloc.lower() != request.headers.get("Host", "").lower()
        ):
            return "cross-origin request refused"
    if request.content_type != "application/json":
        return "send application/json"
    return None


def guard_middleware(config: DisplayConfig) -> Callable[..., Awaitable[web.StreamResponse]]:
    hosts = HostPolicy(config)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not hosts.allows(request.headers.get("Host")):
            log.warning(
                "refused a request for host %r from %s",
                request.headers.get("Host", "")[:80],
                request.remote,
            )
            response: web.StreamResponse = refuse(
                421, "this display does not answer to that host name"
            )
        elif request.method not in SAFE_METHODS and (problem := same_origin_problem(request)):
            log.warning(
                "refused %s %s from %s: %s", request.method, request.path, request.remote, problem
            )
            response = refuse(415 if problem.startswith("send") else 403, problem)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if exc.status >= 400 and request.method not in SAFE_METHODS:
                    exc.force_close()
                raise
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return guard


@web.middleware
async def security_headers_on_errors(request: web.Request, handler: Handler):
    """aiohttp's own error pages (404, 405, 413) get the security headers too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        for name, value in SECURITY_HEADERS.items():
            exc.headers.setdefault(name, value)
        raise
