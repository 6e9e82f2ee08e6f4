"""`llama-land cluster up`: the whole spread world on this machine in one command — a player connects to the
bank, is sent to a room host, and Ctrl-C (SIGINT) stops every process and removes the throwaway data."""

import asyncio
import os
import signal
import subprocess
import sys
import time

from client.net import GameClient

from conftest import ROOT, free_port, needed, run_cli
from server.tools.services import nats_available, postgres_available


def test_print_shows_the_commands_for_machines_of_their_own():
    done = run_cli("cluster", "up", "--print")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("llama-land ")]
    assert len(lines) == 4
    assert "--bank" in lines[0] and "--rooms plaza,stage,pasture" in lines[1] and "--rooms fed-hall,grove" in lines[2]
    assert lines[3].startswith("llama-land worker --nats nats://NATS-HOST:4222")


async def test_cluster_up_serves_a_spread_world_and_ctrl_c_stops_it_all():
    needed(postgres_available() or nats_available(), "PostgreSQL and nats-server")
    base = free_port()  # the room hosts take the next two ports
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "cluster", "up", "--port", str(base)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    out = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, "".join(out)
            out.append(line)
            if line.startswith("Ctrl-C stops everything"):
                break
        text = "".join(out)
        assert f"bank     ws://127.0.0.1:{base}/" in text and f"ws://127.0.0.1:{base + 2}/   (fed-hall, grove)" in text
        alice = await GameClient.connect(f"ws://127.0.0.1:{base}/")
        await alice.register("alice", "pw-secret")
        assert alice.moves == 1 and alice.url == f"ws://127.0.0.1:{base + 1}/" and alice.view.room == "plaza"
        await alice.chat("hello, cluster")
        await alice.close()
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) >= 4  # bank, two room hosts, worker (nats-server and postgres too)
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, "".join(out) + rest
    assert "cluster: stopped" in rest
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
