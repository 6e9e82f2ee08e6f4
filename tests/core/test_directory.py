"""The directory in NATS (JetStream key-value) of which process serves which room, on a real nats-server: written
when a server starts, read by `llama-land cluster status`, removed when it stops."""

import json

from server.app import Server
from server.core.directory import key_for, name_of
from server.world.reader import load_world

from conftest import FAST, TEST_WORLD, run_cli


def test_a_key_names_its_room_whatever_characters_the_name_has():
    for name in ("plaza", "fed-hall", "the.grove", "café", "a=b%c d"):
        key = key_for("room", name)
        assert all(c.isalnum() or c in "._-=" for c in key) and name_of(key) == ("room", name)


async def test_a_server_lists_its_rooms_while_it_serves_them(nats_server, db_url):
    srv = Server(load_world(TEST_WORLD), db_url, "127.0.0.1", 0, FAST, nats_url=nats_server.url, namespace="t")
    await srv.start()
    try:
        status = run_cli("cluster", "status", "--nats", nats_server.url, "--nats-namespace", "t", "--json")
        assert status.returncode == 0, status.stderr
        rooms = json.loads(status.stdout)
        assert set(rooms) == set(srv.runtime.rooms) == {"plaza", "hall"}
        epoch = 0 if db_url.startswith("sqlite") else 1  # a shared database leases its rooms
        assert all(r["Url"] == srv.url and r["Epoch"] == epoch for r in rooms.values()), rooms
        text = run_cli("cluster", "status", "--nats", nats_server.url, "--nats-namespace", "t").stdout
        assert "plaza" in text and srv.url in text
    finally:
        await srv.stop()
    after = run_cli("cluster", "status", "--nats", nats_server.url, "--nats-namespace", "t")
    assert after.returncode == 0 and "no room is served" in after.stdout, after.stdout + after.stderr
