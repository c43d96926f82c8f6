"""This machine's addresses: what listens on them is reached directly, never through a proxy the environment
names ($HTTP_PROXY and the like; urllib and requests would route loopback through it unless $NO_PROXY lists
it), so that a gateway or a PMO's machine behind a corporate proxy still reaches its own node and relay."""

from __future__ import annotations

import urllib.request
from http.client import HTTPResponse
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = frozenset({LOOPBACK, "localhost", "::1"})
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def is_loopback_url(url: str | None) -> bool:
    """Whether `url` names this machine by a loopback host."""
    return urlsplit(url or "").hostname in LOOPBACK_HOSTS


def urlopen(request: urllib.request.Request, timeout: float) -> HTTPResponse:
    """`urllib.request.urlopen`, direct for a loopback URL (raises what urlopen raises)."""
    opener = _DIRECT.open if is_loopback_url(request.full_url) else urllib.request.urlopen
    response: HTTPResponse = opener(request, timeout=timeout)
    return response
