"""The herd with real parts: SQLite log, the wAR ledger actor, the real model in worker processes.
Every scenario ends with the ledger invariant: balances + escrow = supply, and nothing paid is lost."""

import asyncio
import os
import signal

import pytest

from npcs.inference.engine import InferenceEngine
from npcs.inference.herd import HerdActor, HerdConfig
from npcs.inference.models import default_model_path
from npcs.inference.templates import PromptTemplate
from server.core.actors import Edge, LocalBus
from server.core.db import Database
from server.economy.ledger import UNIT, TokenActor
from server.core.log import MessageLog, replay_all
from server.reducers import state_for

VERDICT = PromptTemplate(id="verdict@1", system="You are the Llama King. You grade petitions from 0 to 5.",
                         user="Petition: {petition}", max_tokens=8, grammar='root ::= "grade=" [0-5]')
STORY = PromptTemplate(id="story@1", system="You are a storyteller llama.", user="A long story about {topic}.",
                       max_tokens=300)
TEMPLATES = {t.id: t for t in (VERDICT, STORY)}


class Inbox(Edge):
    def __init__(self, name):
        self.id = name
        self.got = []
        self.event = asyncio.Event()

    def deliver(self, msg):
        self.got.append(msg)
        self.event.set()

    def deliver_raw(self, frame):
        raise TypeError

    async def next(self, timeout=60, progress=False):
        """The next outcome (Herd-Done / Herd-Failed); with progress=True, the next message of any kind
        (Herd-Queued and Herd-Started too)."""
        while True:
            while not self.got:
                self.event.clear()
                await asyncio.wait_for(self.event.wait(), timeout)
            msg = self.got.pop(0)
            if progress or msg["Action"] in ("Herd-Done", "Herd-Failed"):
                return msg


class Market:
    """Everything the herd needs, started and stopped like the server does."""

    def __init__(self, db_url, config=None, queue_size=64, timeout=30.0):
        self.db_url, self.config, self.queue_size, self.timeout = db_url, config or HerdConfig(), queue_size, timeout
        self.t = 1_000

    async def start(self):
        self.db = Database(self.db_url)
        self.db.start()
        self.bus = LocalBus()
        self.log = MessageLog(self.db, state_for)
        self.ledger = TokenActor("wAR", self.bus, self.log, minters=("operator",))
        self.engine = InferenceEngine(str(default_model_path()), self.db, workers=1, threads=1,
                                      queue_size=self.queue_size, timeout=self.timeout)
        await self.engine.start()
        self.herd = HerdActor(self.bus, self.engine, TEMPLATES, self.config)
        self.inbox = Inbox("npc:test")
        for a in (self.ledger, self.herd, self.inbox):
            self.bus.register(a)
        self.ledger.start()
        self.herd.start()
        await self.ledger.open(self.now())
        await self.herd.open(self.now())
        return self

    def now(self):
        self.t += 10
        return self.t

    async def stop(self, drain=True):
        if drain:
            await self.herd.drain()
        else:  # as if killed: nothing refunds, workers die
            for w in self.engine.workers:
                w.kill()
        await self.herd.stop()
        await self.ledger.stop()
        self.db.stop()

    async def call(self, to, **msg):
        return await self.bus.call(to, {**msg, "T": msg.get("T", self.now())})

    async def mint(self, who, amount):
        return await self.call("token:wAR", Action="Mint", To=who, Amount=amount, By="operator")

    async def balance(self, who):
        return (await self.call("token:wAR", Action="Balance", Account=who))["Balance"]

    async def quote(self, template="verdict@1", values=None, requester="alice", **kw):
        values = values if values is not None else {"petition": "more hay for all"}
        return await self.call("herd", Action="Quote", Requester=requester, Template=template, Values=values, **kw)

    async def run(self, quote, request_id, payer="alice", requester="alice", **kw):
        return await self.call("herd", Action="Run", QuoteId=quote["QuoteId"], Requester=requester, Payer=payer,
                               RequestId=request_id, Notify="npc:test", **kw)

    def invariant(self):
        s = self.ledger.state
        assert s.consistent(), (s.balances, s.escrow, s.supply)


@pytest.fixture
async def market(tmp_path):
    m = await Market(f"sqlite:///{tmp_path / 'herd.db'}").start()
    yield m
    await m.stop()
    m.invariant()


async def test_info(market):
    info = await market.call("herd", Action="Info")
    assert info["Token"] == "wAR" and info["BaseFee"] > 0 and info["TokenFee"] > 0
    assert info["Multiplier"] == 1.0 and info["QueueLength"] == 0


async def test_paid_job_settles_to_the_herd(market):
    await market.mint("alice", UNIT)
    q = await market.quote()
    assert q["Action"] == "Quote-Done" and q["PromptTokens"] > 10 and q["MaxTokens"] == 8
    assert q["Fee"] == HerdConfig().base_fee + HerdConfig().token_fee * (q["PromptTokens"] + 8)
    accepted = await market.run(q, "req-1")
    assert accepted["Action"] == "Run-Accepted" and accepted["Position"] == 1
    assert await market.balance("alice") == UNIT - q["Fee"]  # held while it runs
    done = await market.inbox.next()
    assert done["Action"] == "Herd-Done" and done["Text"].startswith("grade=") and done["ReceiptId"]
    assert await market.balance("herd") == q["Fee"] and await market.balance("alice") == UNIT - q["Fee"]
    market.invariant()


async def test_insufficient_funds_takes_nothing(market):
    await market.mint("alice", 10)
    q = await market.quote()
    r = await market.run(q, "req-poor")
    assert r["Code"] == "INSUFFICIENT_FUNDS"
    assert await market.balance("alice") == 10 and not market.ledger.state.escrow
    market.invariant()


async def test_an_expired_or_reused_quote_is_refused(market):
    await market.mint("alice", UNIT)
    q = await market.quote()
    r = await market.call("herd", Action="Run", QuoteId=q["QuoteId"], Requester="alice", Payer="alice",
                          RequestId="late", Notify="npc:test", T=q["ExpiresAt"] + 1)
    assert r["Code"] == "QUOTE_EXPIRED"
    assert (await market.run(q, "again"))["Code"] == "UNKNOWN_QUOTE"
    assert (await market.run(await market.quote(requester="bob"), "not-mine"))["Code"] == "UNKNOWN_QUOTE"
    assert await market.balance("alice") == UNIT


async def test_the_same_request_id_cannot_be_charged_twice(market):
    await market.mint("alice", UNIT)
    first = await market.run(await market.quote(), "req-dup")
    second = await market.run(await market.quote(), "req-dup")
    assert first["Action"] == "Run-Accepted" and second["Code"] == "DUPLICATE_ESCROW"
    await market.inbox.next()
    assert await market.balance("alice") == UNIT - first["Fee"]


async def test_per_requester_limit_and_queue_positions(market):
    await market.mint("alice", UNIT)
    await market.mint("bob", UNIT)
    a1 = await market.run(await market.quote("story@1", {"topic": "hay"}), "a1")
    a2 = await market.run(await market.quote("story@1", {"topic": "sun"}), "a2")
    a3 = await market.run(await market.quote("story@1", {"topic": "rain"}), "a3")
    assert a1["Action"] == a2["Action"] == "Run-Accepted" and a3["Code"] == "TOO_MANY_JOBS"
    b1 = await market.run(await market.quote(requester="bob"), "b1", payer="bob", requester="bob")
    assert b1["Position"] >= 1
    info = await market.call("herd", Action="Info")
    assert info["QueueLength"] >= 1 and info["Multiplier"] > 1.0  # jobs waited: the price rose
    for _ in range(3):
        await market.inbox.next()
    market.invariant()


async def test_a_prompt_too_long_for_the_context_is_refused_at_quote(market):
    q = await market.quote(values={"petition": "hay " * 4000})
    assert q["Code"] == "PROMPT_TOO_LONG"


async def test_a_worker_killed_mid_job_never_double_charges(market):
    await market.mint("alice", UNIT)
    q = await market.quote("story@1", {"topic": "the sea"})
    await market.run(q, "req-kill")
    worker = market.engine.workers[0]
    for _ in range(300):
        if worker.busy:
            break
        await asyncio.sleep(0.01)
    os.kill(worker.proc.pid, signal.SIGKILL)  # the engine retries once on a fresh worker
    done = await market.inbox.next()
    assert done["Action"] == "Herd-Done"
    assert await market.balance("alice") == UNIT - q["Fee"] and await market.balance("herd") == q["Fee"]
    market.invariant()


async def test_a_job_that_times_out_is_refunded(tmp_path):
    m = await Market(f"sqlite:///{tmp_path / 'h.db'}", timeout=0.3).start()
    try:
        await m.mint("alice", UNIT)
        await m.run(await m.quote("story@1", {"topic": "forever"}), "req-slow")
        failed = await m.inbox.next()
        assert failed["Action"] == "Herd-Failed" and failed["Code"] == "WORKER_TIMEOUT"
        assert failed["Refunded"] > 0 and await m.balance("alice") == UNIT
        m.invariant()
    finally:
        await m.stop()


async def test_a_full_queue_refunds_at_once(tmp_path):
    m = await Market(f"sqlite:///{tmp_path / 'h.db'}", queue_size=1,
                     config=HerdConfig(per_requester=10)).start()
    try:
        await m.mint("alice", UNIT)
        results = [await m.run(await m.quote("story@1", {"topic": f"t{i}"}), f"r{i}") for i in range(4)]
        full = [r for r in results if r.get("Code") == "QUEUE_FULL"]
        assert full
        accepted = [r for r in results if r["Action"] == "Run-Accepted"]
        for _ in accepted:
            await m.inbox.next()
        assert await m.balance("alice") == UNIT - sum(r["Fee"] for r in accepted)
        m.invariant()
    finally:
        await m.stop()


async def test_shutdown_refunds_queued_jobs_and_the_refunds_survive_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    m = await Market(url, config=HerdConfig(per_requester=10)).start()
    await m.mint("alice", UNIT)
    accepted = [await m.run(await m.quote("story@1", {"topic": f"t{i}"}), f"s{i}") for i in range(4)]
    assert all(a["Action"] == "Run-Accepted" for a in accepted)
    await m.stop(drain=True)  # queued and running jobs fail with SHUTDOWN and are refunded
    m.invariant()
    after = await Market(url).start()  # a fresh process: state comes back from the log
    try:
        assert await after.balance("alice") == UNIT and not after.ledger.state.escrow
        reasons = [f["Code"] for f in m.inbox.got if f["Action"] == "Herd-Failed"]  # never read: still in the inbox
        assert reasons and set(reasons) <= {"SHUTDOWN"}
    finally:
        await after.stop()


async def test_a_killed_server_refunds_paid_jobs_on_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    m = await Market(url, config=HerdConfig(per_requester=10)).start()
    await m.mint("alice", UNIT)
    for i in range(3):
        await m.run(await m.quote("story@1", {"topic": f"t{i}"}), f"k{i}")
    assert len(m.ledger.state.escrow) == 3
    await m.stop(drain=False)  # as if killed: three fees sit in escrow
    after = await Market(url).start()  # open() refunds them
    try:
        assert await after.balance("alice") == UNIT and not after.ledger.state.escrow
        after.invariant()
        digests = {r.actor: r.digest for r in replay_all(after.db, state_for)}
        assert digests["token:wAR"] == after.ledger.state.digest()  # and the log replays to the same ledger
    finally:
        await after.stop()


async def test_an_answer_that_fails_validation_is_refunded(tmp_path):
    """max_tokens too small for the grammar: the output is "grade=" with no digit, and nobody pays for it."""
    short = PromptTemplate(id="short@1", system="You grade petitions.", user="Petition: {petition}", max_tokens=2,
                           grammar='root ::= "grade=" [0-5]')
    m = Market(f"sqlite:///{tmp_path / 'h.db'}")
    await m.start()
    m.herd.templates[short.id] = short
    try:
        await m.mint("alice", UNIT)
        await m.run(await m.quote("short@1"), "req-short")
        failed = await m.inbox.next()
        assert failed["Action"] == "Herd-Failed" and failed["Code"] == "INVALID_OUTPUT"
        assert await m.balance("alice") == UNIT and await m.balance("herd") == 0
        m.invariant()
    finally:
        await m.stop()


async def test_requesters_hear_their_place_in_line(market):
    """Three jobs on one worker: the later ones hear their position move up, then that they are running."""
    for who in ("alice", "bob", "carol"):
        await market.mint(who, UNIT)
    accepted = []
    for who in ("alice", "bob", "carol"):
        q = await market.quote("story@1", {"topic": f"{who}'s hay"}, requester=who)
        accepted.append(await market.run(q, f"line-{who}", payer=who, requester=who))
    assert [a["Position"] for a in accepted][1:] == [1, 2] or [a["Position"] for a in accepted] == [1, 2, 3]
    events = []
    while sum(1 for e in events if e["Action"] == "Herd-Done") < 3:
        events.append(await market.inbox.next(progress=True))
    carol = [e for e in events if e["RequestId"] == "line-carol"]
    kinds = [e["Action"] for e in carol]
    assert kinds[-2:] == ["Herd-Started", "Herd-Done"]
    assert [e["Position"] for e in carol if e["Action"] == "Herd-Queued"] == [1]  # moved up from 2 to 1
    for rid in ("line-alice", "line-bob"):
        assert [e["Action"] for e in events if e["RequestId"] == rid][-2:] == ["Herd-Started", "Herd-Done"]
    market.invariant()
