"""A world spread over real processes: a bank (accounts, ledgers, the Fed, the herd with the real model) and two
room hosts on one PostgreSQL and one nats-server. Players connect anywhere and are handed off to the process that
serves their room, at login and through portals; chat, whispers across processes, a petition from a room on one
process to the Fed on another, transfers; replay verifies and matches every process's live state. A killed room
host's rooms are taken over by a standby and the players resume."""

import asyncio
import json
import signal
import urllib.request

import pytest

from client.net import GameClient, ServerError
from server.economy.ledger import UNIT

from conftest import ServerProcess, eventually, near_npc, run_cli, through, until
from court import DEFAULT_WORLD, WORLD, balances, spot, to_the_king
from test_failover import chat_texts, epoch_of, serving, standby_process

A_ROOMS = "plaza,stage,pasture"
B_ROOMS = "fed-hall,grove"


class Cluster:
    def __init__(self, postgres, nats_server, ttl: str = "2"):
        self.db = postgres.new_database()
        self.nats = nats_server.url
        common = ("--nats", self.nats, "--lease-ttl", ttl)
        self.ttl = ttl
        self.bank = ServerProcess(self.db, None, DEFAULT_WORLD, "--bank", "--inference-workers", "1", *common)
        self.a = ServerProcess(self.db, None, DEFAULT_WORLD, "--rooms", A_ROOMS, "--no-inference", *common)
        self.b = ServerProcess(self.db, None, DEFAULT_WORLD, "--rooms", B_ROOMS, "--no-inference", *common)
        self.procs = [self.bank, self.a, self.b]
        self.extra = []

    def standby(self, *role: str):
        """A `serve --standby` for one part of this world (it opens its port once it has taken over)."""
        proc, port = standby_process(self.db, *role, "--nats", self.nats, world=DEFAULT_WORLD)
        self.extra.append(proc)
        return proc, port

    def close(self) -> None:
        for p in self.procs:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
                p.kill()
        for proc in self.extra:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def cluster(postgres, nats_server):
    c = Cluster(postgres, nats_server)
    yield c
    c.close()


async def resumed_via(url: str, token: str) -> GameClient:
    """A client coming back where it came in after its room host died: its token resumes there, and the hand-off
    finds the standby once the directory names it (until then UNAVAILABLE, and it tries again)."""
    for _ in range(50):
        client = await GameClient.connect(url)
        try:
            await client.resume(token)
            return client
        except ServerError as exc:
            assert exc.code == "UNAVAILABLE", exc
            await client.close()
            await asyncio.sleep(0.2)
    raise AssertionError("the standby was never named")


def state_of(http: str) -> dict:
    with urllib.request.urlopen(http + "/state", timeout=10) as resp:
        return json.load(resp)


async def test_players_are_handed_off_between_room_hosts_and_everything_works_across_them(cluster):
    # Registered on host A, where the start room (the plaza) is served: no hand-off.
    alice = await GameClient.connect(cluster.a.url)
    await alice.register("alice", "pw-secret")
    assert alice.moves == 0 and alice.view.room == "plaza"
    # Bob connects to the bank, which serves no room: he is sent to A by himself.
    bob = await GameClient.connect(cluster.bank.url)
    await bob.register("bob", "pw-secret")
    assert bob.moves == 1 and bob.url == cluster.a.url and bob.view.room == "plaza"
    await alice.request("Chat", Text="see you in the hall")
    # Through the portal into the Fed hall, served by host B: alice follows the hand-off.
    joined = await through(alice, WORLD, "to-hall")
    assert joined["Room"] == "fed-hall" and alice.url == cluster.b.url and alice.moves == 1
    who_a = await bob.request("Who")
    assert who_a["Players"] == ["bob"]  # alice left the plaza: never in two rooms
    assert (await alice.request("Who"))["Players"] == ["alice"]
    # Room chat on B; whispers from B to A and back (any case of the name).
    heard = await alice.chat("hello hall")
    assert heard["Heard"] == 0
    w = await alice.whisper("BOB", "psst from the hall")
    assert w["To"] == "bob"
    got = await bob.wait_for(lambda e: e["Action"] == "Whisper" and e["From"] == "alice", timeout=5, past=True)
    assert got["Text"] == "psst from the hall"
    await bob.whisper("alice", "heard you")
    await alice.wait_for(lambda e: e["Action"] == "Whisper" and e["From"] == "bob", timeout=5, past=True)
    with pytest.raises(ServerError) as exc:
        await alice.whisper("nobody", "hello?")
    assert exc.value.code == "UNKNOWN_PLAYER"
    # Balances and a transfer: the wallet on B asks the ledger on the bank; bob on A is told.
    assert (await balances(alice))["wAR"] == 10 * UNIT
    await alice.request("Transfer", Recipient="bob", Quantity=UNIT, Key="t1")
    notice = await bob.wait_for(lambda e: e["Action"] == "Credit-Notice" and e["Reason"] == "transfer", timeout=5,
                                past=True)
    assert notice["Quantity"] == UNIT and notice["Sender"] == "alice"
    assert (await balances(bob))["wAR"] == 11 * UNIT
    # A petition from the hall on B to the Fed on the bank, judged by the real model.
    await to_the_king(alice, from_plaza=False)
    accepted = await alice.request("Petition", Text="Please plant an orchard of apple trees by the plaza.")
    verdict = await alice.wait_for(lambda e: e["Action"] in ("Granted", "PetitionFailed")
                                   and e.get("PetitionId") == accepted["PetitionId"], timeout=240, past=True)
    assert verdict["Action"] == "Granted", verdict
    assert (await balances(alice))["LLAMA"] == verdict["Payout"] > 0
    # Back through the door to the plaza on A: the chat history is the plaza's, the position the door's.
    back = await through(alice, WORLD, "to-plaza")
    assert back["Room"] == "plaza" and alice.url == cluster.a.url and alice.moves == 2
    assert "see you in the hall" in [line["Text"] for line in alice.view.chat]
    await alice.chat("home again")
    await asyncio.sleep(0.5)
    # Replay of the one PostgreSQL log matches every process's live state; each actor is served once.
    lives = [state_of(p.http) for p in cluster.procs]
    actors = [a for live in lives for a in live]
    assert len(actors) == len(set(actors))
    assert {"accounts", "token:wAR", "fed"} <= set(lives[0]) and "room:plaza" in lives[1] and "room:fed-hall" in lives[2]
    replay = await asyncio.to_thread(run_cli, "replay", "--db", cluster.db, "--compare",
                                     *(p.http for p in cluster.procs))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "live state matches replay" in replay.stdout
    status = await asyncio.to_thread(run_cli, "cluster", "status", "--nats", cluster.nats, "--json")
    rooms = json.loads(status.stdout)
    assert rooms["plaza"]["Url"] == cluster.a.url and rooms["fed-hall"]["Url"] == cluster.b.url
    await alice.close()
    await bob.close()


async def test_a_standby_takes_over_a_killed_room_host_and_its_players_resume(cluster):
    alice = await GameClient.connect(cluster.a.url)
    await alice.register("alice", "pw-secret")
    await through(alice, WORLD, "to-hall")
    await alice.chat("before the crash")
    token = alice.token
    _, epoch = epoch_of(cluster.db, "room:fed-hall")
    proc, port = cluster.standby("--rooms", B_ROOMS, "--no-inference")
    await asyncio.sleep(1.0)
    assert proc.poll() is None  # waiting while B holds its rooms
    cluster.b.proc.send_signal(signal.SIGKILL)
    cluster.b.proc.wait()
    await alice.closed
    took = await serving(port, proc)
    assert took < 15
    assert epoch_of(cluster.db, "room:fed-hall")[1] == epoch + 1
    # The client comes back where it came in (the bank here): its token resumes, the hand-off finds the standby.
    again = await resumed_via(cluster.bank.url, token)
    await until(again, lambda: again.view.room == "fed-hall")
    assert again.url == f"ws://127.0.0.1:{port}/"
    assert "before the crash" in [line["Text"] for line in again.view.chat]
    await again.chat("after the takeover")
    await asyncio.sleep(0.5)
    standby_http = f"http://127.0.0.1:{port}"
    replay = await asyncio.to_thread(run_cli, "replay", "--db", cluster.db, "--compare", cluster.bank.http,
                                     cluster.a.http, standby_http)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    await again.close()


async def test_a_paused_room_host_cannot_write_after_its_rooms_were_taken_over(cluster):
    alice = await GameClient.connect(cluster.a.url)
    await alice.register("alice", "pw-secret")
    await through(alice, WORLD, "to-hall")
    await alice.chat("alice before the pause")
    proc, port = cluster.standby("--rooms", B_ROOMS, "--no-inference")
    cluster.b.proc.send_signal(signal.SIGSTOP)  # a long pause or a partition: its leases run out
    await serving(port, proc)
    await alice.send("Chat", Text="alice while paused")  # read by the paused host when it wakes
    carol = await GameClient.connect(cluster.bank.url)
    await carol.register("carol", "pw-secret")
    for _ in range(50):  # the standby's directory entry replaces the paused host's
        rooms = json.loads((await asyncio.to_thread(run_cli, "cluster", "status", "--nats", cluster.nats,
                                                    "--json")).stdout)
        if rooms["fed-hall"]["Url"].endswith(f":{port}/"):
            break
        await asyncio.sleep(0.2)
    joined = await through(carol, WORLD, "to-hall")
    assert joined["Room"] == "fed-hall" and carol.url.endswith(f":{port}/")
    await carol.chat("carol in the hall")
    cluster.b.proc.send_signal(signal.SIGCONT)
    out, _ = cluster.b.proc.communicate(timeout=30)
    assert cluster.b.proc.returncode == 3 and "lost ownership" in out, out
    await carol.chat("carol after")
    await asyncio.sleep(0.5)
    texts = chat_texts(cluster.db)
    assert "alice while paused" not in texts  # the zombie's append was refused, not written
    assert texts == ["alice before the pause", "carol in the hall", "carol after"]
    replay = await asyncio.to_thread(run_cli, "replay", "--db", cluster.db)
    assert replay.returncode == 0, replay.stdout + replay.stderr  # one chain per actor: no fork
    await carol.close()


async def test_a_bank_killed_mid_petition_grants_or_refunds_each_offering_once(cluster):
    alice = await GameClient.connect(cluster.a.url)
    await alice.register("alice", "pw-secret")
    await to_the_king(alice)  # in the hall, on host B
    proc, port = cluster.standby("--bank", "--inference-workers", "1")
    accepted = await alice.request("Petition", Text="Please plant an orchard of apple trees by the plaza.")
    cluster.bank.proc.send_signal(signal.SIGKILL)  # the offering is in escrow; the votes are queued or running
    cluster.bank.proc.wait()
    await serving(port, proc, timeout=60)
    history = []
    for _ in range(600):  # asked from host B, answered by whichever bank runs the Fed now
        try:
            history = (await alice.request("Petitions"))["Petitions"]
        except ServerError as exc:
            assert exc.code in ("UNAVAILABLE", "INTERNAL"), exc
            history = []
        if history and history[0]["Status"] != "judging":
            break
        await asyncio.sleep(0.2)
    assert [p["PetitionId"] for p in history] == [accepted["PetitionId"]], history
    status = history[0]["Status"]
    got = await balances(alice)
    if status == "refunded":
        assert got == {"wAR": 10 * UNIT, "LLAMA": 0}
    else:
        assert status == "granted" and got == {"wAR": 9 * UNIT, "LLAMA": history[0]["Payout"]}
    assert (await alice.request("TokenInfo"))["InEscrow"] == 0
    await alice.close()
    replay = await asyncio.to_thread(run_cli, "replay", "--db", cluster.db)
    assert replay.returncode == 0, replay.stdout + replay.stderr


async def test_an_npc_program_connecting_to_the_bank_is_sent_to_the_host_of_its_room_and_follows_a_failover(cluster):
    from client.npc_sdk import Npc, Stopped, Text, action, fixed

    class Echo(Npc):
        def __init__(self):
            super().__init__()
            self.paid: list[int] = []

        @action(title="Echo", price=fixed(1, "wAR"), fields={"words": Text(max_length=20)})
        async def echo(self, request, words):
            if words == "wait":  # never answered: the host is killed meanwhile
                await asyncio.Event().wait()
            return f"{words}, {request.player}!"

        async def on_paid(self, request, paid):
            self.paid.append(paid)

    x, y = spot(WORLD)
    added = await asyncio.to_thread(run_cli, "admin", "npc", "add", "Echo", "--room", "plaza", "--at", f"{x},{y}",
                                    "--url", cluster.bank.url, "--db", cluster.db)
    assert added.returncode == 0, added.stderr
    key = added.stdout.split()[-1]
    raw = await GameClient.connect(cluster.bank.url)  # the bank serves no room: it says which process does
    with pytest.raises(ServerError) as no:
        await raw.request("NpcLogin", Name="Echo", Key=key)
    assert no.value.code == "UNAVAILABLE" and no.value.frame["Url"] == cluster.a.url and no.value.frame["Ref"]
    await raw.close()
    npc = Echo()
    running = asyncio.ensure_future(npc.serve(cluster.bank.url, "Echo", key, backoff_max=0.5))
    alice = await GameClient.connect(cluster.a.url)
    await alice.register("alice", "pw-secret")
    await eventually(lambda: npc.me.get("Room") == "plaza" and npc.client.url == cluster.a.url)
    await eventually(lambda: any(n["Id"] == "echo" for n in alice.view.npcs.values()))
    await near_npc(alice, WORLD, (x, y), WORLD.rules.near_radius)
    sent = await alice.request("Use", Npc="echo", Name="echo", Fields={"words": "hay"}, MaxPrice=UNIT)
    answer = await alice.wait_for(lambda e: e["Action"] == "NpcAnswer" and e["RequestId"] == sent["RequestId"],
                                  timeout=10, past=True)
    assert answer["Text"] == "hay, alice!" and answer["Paid"] == UNIT  # held and settled by the bank's ledger
    await eventually(lambda: npc.paid == [UNIT])
    assert (await balances(alice))["wAR"] == 9 * UNIT
    listed = await asyncio.to_thread(run_cli, "admin", "npc", "list", "--url", cluster.bank.url, "--db", cluster.db)
    assert "connected since" in listed.stdout and "echo; 0 open, 1 answered" in listed.stdout  # asked across NATS
    # host A is killed with a request open: the standby that takes over its rooms refunds it before it serves, and
    # the program, reconnecting to the bank, is sent on to the standby
    await alice.request("Use", Npc="echo", Name="echo", Fields={"words": "wait"}, MaxPrice=UNIT)
    proc, port = cluster.standby("--rooms", A_ROOMS, "--no-inference")
    await asyncio.sleep(1.0)
    cluster.a.proc.send_signal(signal.SIGKILL)
    cluster.a.proc.wait()
    await serving(port, proc)
    standby = f"ws://127.0.0.1:{port}/"
    await eventually(lambda: npc.client.url == standby and npc.client.ws.close_code is None and npc.me, timeout=30)
    alice = await resumed_via(cluster.bank.url, alice.token)
    assert alice.url == standby and (await balances(alice))["wAR"] == 9 * UNIT  # the open request refunded
    await eventually(lambda: any(n["Id"] == "echo" for n in alice.view.npcs.values()))
    await near_npc(alice, WORLD, (x, y), WORLD.rules.near_radius)  # from where her position was last checkpointed
    sent = await alice.request("Use", Npc="echo", Name="echo", Fields={"words": "again"}, MaxPrice=UNIT)
    await alice.wait_for(lambda e: e["Action"] == "NpcAnswer" and e["RequestId"] == sent["RequestId"], timeout=10,
                         past=True)
    await eventually(lambda: npc.paid == [UNIT, UNIT])
    assert (await balances(alice))["wAR"] == 8 * UNIT
    # revoked at the bank: the program on the room host is closed (4003) and run ends
    revoked = await asyncio.to_thread(run_cli, "admin", "npc", "revoke", "Echo", "--url", cluster.bank.url,
                                      "--db", cluster.db)
    assert revoked.returncode == 0, revoked.stderr
    with pytest.raises(Stopped):
        await asyncio.wait_for(running, 10)
    await alice.wait_for(lambda e: e["Action"] == "NpcLeft", timeout=10, past=True)
    await alice.close()
