"""User-given URLs reach only public addresses (server-side request forgery): by IP
literal and by name (``localhost`` resolves here without a network), with the
operator's allow-list. Public names cannot be resolved offline, so public
addresses are given as literals."""

from __future__ import annotations

import pytest

from eowatch.outbound import OutboundRefused, check_outbound


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/x.tif",
        "http://localhost/x.tif",  # a name that resolves to loopback
        "http://10.1.2.3/stac",
        "http://192.168.0.10/stac",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud instance metadata
        "http://100.64.0.1/x",  # shared address space
        "http://[::1]:8080/x",
        "http://[::ffff:127.0.0.1]/x",  # IPv4-mapped loopback
        "http://[fe80::1]/x",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(url: str) -> None:
    with pytest.raises(OutboundRefused, match="private, loopback or link-local") as caught:
        check_outbound(url, "input 'before'")
    assert "input 'before'" in str(caught.value) and "EOWATCH_OUTBOUND_ALLOW" in str(caught.value)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://93.184.216.34/x", "gopher://93.184.216.34/", "http:///nohost"]
)
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(OutboundRefused, match="must be an http"):
        check_outbound(url, "webhook")


def test_public_addresses_pass() -> None:
    for url in ("https://93.184.216.34/x.tif", "http://[2606:2800:220:1:248:1893:25c8:1946]/x"):
        assert check_outbound(url, "input") == url


def test_the_allow_list_takes_hosts_and_networks() -> None:
    assert check_outbound("http://127.0.0.1:9000/x", "input", ["127.0.0.1"])
    assert check_outbound("http://10.1.2.3/stac", "provider", ["10.0.0.0/8"])
    assert check_outbound("http://localhost/x", "input", ["localhost"])
    with pytest.raises(OutboundRefused):
        check_outbound("http://10.1.2.3/stac", "provider", ["192.168.0.0/16", "example.org"])


def test_a_name_that_does_not_resolve_yet_passes_and_is_checked_again_when_used() -> None:
    assert check_outbound("http://no-such-host.invalid/x", "webhook") == "http://no-such-host.invalid/x"
