"""The client's address behind a reverse proxy, as pure code (server/net/address.py)."""

import pytest

from server.net.address import client_address, networks

PROXY = networks(["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize("peer, forwarded, trusted, client", [
    ("203.0.113.7", None, PROXY, "203.0.113.7"),  # straight in
    ("203.0.113.7", "1.2.3.4", PROXY, "203.0.113.7"),  # not through a proxy: the header is the client's own words
    ("127.0.0.1", "203.0.113.7", PROXY, "203.0.113.7"),  # through the proxy
    ("127.0.0.1", "203.0.113.7", (), "127.0.0.1"),  # no proxy trusted: the header is ignored
    ("127.0.0.1", "198.51.100.1, 203.0.113.7", PROXY, "203.0.113.7"),  # a hop the client wrote is skipped over
    ("127.0.0.1", "203.0.113.7, 10.1.2.3", PROXY, "203.0.113.7"),  # through two proxies
    ("127.0.0.1", "10.9.9.9, 10.1.2.3", PROXY, "10.9.9.9"),  # every hop a proxy: the farthest
    ("127.0.0.1", " , ", PROXY, "127.0.0.1"),
    ("127.0.0.1", "not-an-address", PROXY, "not-an-address"),  # an untrusted hop, whatever it says
])
def test_the_client_is_the_first_untrusted_hop_from_the_right(peer, forwarded, trusted, client):
    assert client_address(peer, forwarded, trusted) == client


def test_a_bad_trusted_proxy_is_named():
    with pytest.raises(ValueError, match="'10.0.0.300'"):
        networks(["10.0.0.300"])
    assert networks(["::1", "192.168.0.0/16"])[1].num_addresses == 65536


def test_serve_refuses_a_bad_trusted_proxy(tmp_path):
    from conftest import run_cli

    done = run_cli("serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--trusted-proxy", "proxy.example")
    assert done.returncode == 2 and "--trusted-proxy 'proxy.example' is not an IP address or network" in done.stderr
