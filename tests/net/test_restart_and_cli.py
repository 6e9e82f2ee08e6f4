"""The `llama-land` command as a user runs it: a real server process, killed and restarted; replay; bots; errors."""

import asyncio
import socket
import sqlite3
import sys
from pathlib import Path

import pytest

from client.net import GameClient

from conftest import TEST_WORLD, ServerProcess, run_cli, walk


async def test_a_killed_server_restarts_with_accounts_chat_and_positions(db_url):
    db = db_url  # an SQLite file, then a PostgreSQL database
    first = ServerProcess(db)
    try:
        alice = await GameClient.connect(first.url)
        await alice.register("alice", "pw-secret")
        assert await walk(alice, "E E E") == (6, 3)
        await alice.chat("remember me")
        bob = await GameClient.connect(first.url)
        await bob.register("bob", "pw-secret")
        assert await walk(bob, "S S") == (3, 5)
        await alice.close()  # alice leaves (after the 1 s grace): her position is saved on leave
        await asyncio.sleep(1.6)  # bob stays: his position is saved by the periodic checkpoint (1 s here)
    finally:
        first.kill()  # SIGKILL: no shutdown code runs

    second = ServerProcess(db)
    try:
        alice = await GameClient.connect(second.url)
        await alice.login("alice", "pw-secret")
        assert (alice.view.room, alice.view.x, alice.view.y) == ("plaza", 6, 3)
        assert [line["Text"] for line in alice.view.chat] == ["remember me"]
        bob = await GameClient.connect(second.url)
        await bob.login("bob", "pw-secret")
        assert (bob.view.x, bob.view.y) == (3, 5)
        who = await bob.request("Who")
        assert who["Players"] == ["alice", "bob"]  # bob's pre-crash avatar was cleared, not duplicated
        await bob.chat("back again")
        await asyncio.sleep(0.2)
        replay = await asyncio.to_thread(run_cli, "replay", "--db", db, "--compare", second.http)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert "live state matches replay for all 5 actors" in replay.stdout
        await alice.close()
        await bob.close()
    finally:
        out = second.stop()
    assert "shutting down" in out
    # After a clean stop every actor has a snapshot, and replay agrees with each one.
    replay = run_cli("replay", "--db", db)
    assert replay.returncode == 0 and replay.stdout.count("snapshot ok") == 5


def test_replay_refuses_a_tampered_log(tmp_path):
    db_path = tmp_path / "world.db"
    server = ServerProcess(f"sqlite:///{db_path}")

    async def talk():
        client = await GameClient.connect(server.url)
        await client.register("alice", "pw-secret")
        await client.chat("the original words")
        await client.close()

    try:
        asyncio.run(talk())
    finally:
        server.stop()
    with sqlite3.connect(db_path) as conn:
        rowid, body = conn.execute("SELECT id, body FROM logrecord WHERE action = 'Chat'").fetchone()
        conn.execute("UPDATE logrecord SET body = ? WHERE id = ?", (body.replace(b"original", b"forged!!"), rowid))
    result = run_cli("replay", "--db", f"sqlite:///{db_path}")
    assert result.returncode == 2
    assert "hash chain broken" in result.stderr


def test_bot_command_walks_and_chats(tmp_path):
    server = ServerProcess(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        result = run_cli("bot", "--count", "4", "--url", server.url, "--duration", "2", "--chat-every", "0.5")
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert "bots connected 4, failed 0" in result.stdout
    assert "chat lines sent" in result.stdout and "move echo ms: p50" in result.stdout


@pytest.mark.parametrize("args", [[], ["serve"], ["replay"], ["bot"]])
def test_help(args):
    result = run_cli(*args, "--help")
    assert result.returncode == 0 and "usage: llama-land" in result.stdout


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "llama-land"
    assert script.exists()


def one_line_error(result):
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llama-land: error: "), result.stderr
    return lines[0]


def test_bad_world_path(tmp_path):
    assert "no world.toml" in one_line_error(run_cli("serve", "--world", str(tmp_path), "--port", "0"))


def test_bad_db_url(tmp_path):
    assert "bad --db URL" in one_line_error(run_cli("serve", "--db", "nosuch://db", "--port", "0"))
    assert "bad --db URL" in one_line_error(run_cli("replay", "--db", "sqlite:////no/such/dir/x.db"))


def test_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert "already in use" in one_line_error(result)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_serve_runs_on_either_event_loop(tmp_path, loop):
    server = ServerProcess(f"sqlite:///{tmp_path / 'loop.db'}", None, TEST_WORLD, "--event-loop", loop,
                           "--no-inference")
    try:
        alice = await GameClient.connect(server.url)
        await alice.register("alice", "pw-secret")
        await alice.request("Move", Dir="E")
        assert (await alice.chat("on " + loop))["Seq"] == 1
        await alice.close()
    finally:
        out = server.stop()
    assert "shutting down" in out
