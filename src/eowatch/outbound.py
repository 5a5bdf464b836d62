"""Which URLs a user may have this service fetch or call (server-side request forgery).

A URL given over the API (a process input, a task's STAC API or webhook) is
allowed when its scheme is http(s) and every address its host resolves to is
public: loopback, private, link-local (cloud metadata at 169.254.169.254),
shared, multicast, reserved and unspecified addresses are refused, by name or
after DNS resolution. ``settings.outbound_allow`` lists host names and networks
(CIDR) an operator allows anyway (an internal STAC API, a test server). The
refusal names the URL only, never what answers there. Checked when the URL is
given (a name that does not resolve yet passes) and again just before it is used
(a name may resolve elsewhere by then);
webhooks follow no redirect. Inputs read by GDAL may still follow one: GDAL
has no hook to check a redirect's target (said in the issue's note).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from .errors import InputError

__all__ = ["check_outbound", "OutboundRefused"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundRefused(InputError):
    """A user-given URL points where this service does not go."""


def _allowed(host: str, addresses: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address],
             allow: Iterable[str]) -> bool:  # fmt: skip
    networks: list[_Network] = []
    for entry in allow:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            if entry.lower() == host.lower():
                return True
    return bool(networks) and all(any(a in n for n in networks) for a in addresses)


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_outbound(url: str, what: str, allow: Iterable[str] = ()) -> str:
    """``url`` when this service may fetch it; ``OutboundRefused`` naming ``what`` otherwise."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise OutboundRefused(f"{what} {url!r} must be an http(s) URL with a host name")
    allow = list(allow)
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)  # fmt: skip
    except (OSError, UnicodeError):  # nothing to reach now; checked again when it is used
        return url
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    if _allowed(host, addresses, allow) or all(_public(a) for a in addresses):
        return url
    raise OutboundRefused(
        f"{what} {url!r} points to a private, loopback or link-local address, where this service does not "
        "go; give a public URL, or ask an administrator to allow the host (EOWATCH_OUTBOUND_ALLOW)"
    )
