"""Money is exactly-once across processes: every ledger change has a key, a retry with the same terms gets the
first answer and moves nothing, other terms are refused. Pure rules first, then a real ledger on a real database
(SQLite and PostgreSQL) behind a real nats-server, asked from another bus whose first reply is lost."""

import asyncio

import pytest

from server.core.log import MessageLog, replay_all
from server.core.natsbus import NatsBus
from server.economy.ledger import UNIT, TokenActor, TokenState, change, earlier, key_of, refusal
from server.reducers import state_for


def ledger():
    s = TokenState()
    s.apply({"Action": "Configure", "Cap": None, "Minters": ["operator"], "T": 0})
    return s


def ask(state, **msg):
    """What the actor does with a change: the first answer again, a refusal, or apply it (with its key)."""
    repeat = earlier(state, msg)
    if repeat is not None:
        return "repeat", repeat[2]
    no = refusal(state, msg)
    if no is not None:
        return no[0], None
    state.apply({**msg, "Key": key_of(msg), "T": 0})
    return "done", state.answer_balance(msg)


def test_each_change_happens_once_per_key_and_a_retry_gets_its_first_answer():
    s = ledger()
    assert ask(s, Action="Mint", To="alice", Amount=5 * UNIT, By="operator", Ref="m1") == ("done", 5 * UNIT)
    assert ask(s, Action="Mint", To="alice", Amount=5 * UNIT, By="operator", Ref="m1") == ("repeat", 5 * UNIT)
    assert ask(s, Action="Mint", To="alice", Amount=6 * UNIT, By="operator", Ref="m1")[0] == "DUPLICATE_REF"
    assert ask(s, Action="Hold", Escrow="e1", From="alice", Amount=UNIT, For="x") == ("done", 4 * UNIT)
    assert ask(s, Action="Hold", Escrow="e1", From="alice", Amount=UNIT, For="x") == ("repeat", 4 * UNIT)
    assert ask(s, Action="Hold", Escrow="e1", From="alice", Amount=2 * UNIT, For="x")[0] == "DUPLICATE_ESCROW"
    assert ask(s, Action="Settle", Escrow="e1", To="herd") == ("done", UNIT)
    assert ask(s, Action="Settle", Escrow="e1", To="herd") == ("repeat", UNIT)
    assert ask(s, Action="Settle", Escrow="e1", To="fed")[0] == "UNKNOWN_ESCROW"
    assert ask(s, Action="Refund", Escrow="e1")[0] == "UNKNOWN_ESCROW"  # settled: never refunded too
    # A Hold retried after its escrow closed is still the same Hold: it does not take the fee again.
    assert ask(s, Action="Hold", Escrow="e1", From="alice", Amount=UNIT, For="x") == ("repeat", 4 * UNIT)
    assert ask(s, Action="Transfer", From="alice", To="bob", Amount=UNIT, Ref="t1") == ("done", 3 * UNIT)
    assert ask(s, Action="Transfer", From="alice", To="bob", Amount=UNIT, Ref="t1") == ("repeat", 3 * UNIT)
    assert (s.balance("alice"), s.balance("bob"), s.balance("herd"), s.supply) == (3 * UNIT, UNIT, UNIT, 5 * UNIT)
    assert s.consistent()


def test_a_log_from_before_keys_keeps_its_digest():
    old, new = ledger(), ledger()
    entries = [{"Action": "Mint", "To": "a", "Amount": 9, "By": "operator", "Ref": "r", "T": 1},
               {"Action": "Hold", "Escrow": "e", "From": "a", "Amount": 2, "For": "x", "T": 2}]
    for entry in entries:
        old.apply(entry)
    assert "done" not in old.to_data() and old.done == {}
    for entry in entries:
        new.apply({**entry, "Key": key_of(entry)})
    assert old.digest() != new.digest() and set(new.done) == {"ref:r", "hold:e"}
    # An old Ref still refuses a second mint as it did.
    assert refusal(old, {"Action": "Mint", "To": "a", "Amount": 9, "By": "operator", "Ref": "r"})[0] == "DUPLICATE_REF"


class DroppingBus(NatsBus):
    """The caller's side of a network that loses the first answer of each call."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.dropped = 0

    async def call(self, to, msg, timeout=10.0):
        if not self.dropped:
            self.dropped += 1
            self.send(to, {**msg, "ReplyTo": "nats:lost.reply"})  # it arrives and is done; the answer is lost
            await asyncio.sleep(timeout)
            raise TimeoutError(f"{to!r} did not answer within {timeout:g}s")
        return await super().call(to, msg, timeout)


async def test_a_lost_answer_and_a_retry_move_money_once(db, nats_server):
    here = NatsBus(nats_server.url, "t")
    await here.connect()
    log = MessageLog(db, state_for)
    token = TokenActor("wAR", here, log, minters=("operator",))
    here.register(token)
    token.start()
    await token.open(1)
    caller = DroppingBus(nats_server.url, "t")
    await caller.connect()
    await asyncio.sleep(0.1)
    try:
        minted = await change(caller, "wAR", {"Action": "Mint", "To": "alice", "Amount": 5 * UNIT, "By": "operator",
                                              "Ref": "grant-1", "T": 2}, timeout=0.5)
        # The retry's answer is the first one's (marked as a repeat): the mint happened once.
        assert minted == {"Action": "Mint-Done", "Token": "wAR", "Balance": 5 * UNIT, "Repeat": True}
        assert caller.dropped == 1
        for kind, fields, balance in (
                ("Hold", {"Escrow": "herd:r1", "From": "alice", "Amount": 2 * UNIT, "For": "herd:x"}, 3 * UNIT),
                ("Settle", {"Escrow": "herd:r1", "To": "herd"}, 2 * UNIT),
                ("Transfer", {"From": "alice", "To": "bob", "Amount": UNIT, "Ref": "gift-1"}, 2 * UNIT)):
            caller.dropped = 0
            done = await change(caller, "wAR", {"Action": kind, **fields, "T": 3}, timeout=0.5)
            assert done["Action"] == f"{kind}-Done" and done["Balance"] == balance and done["Repeat"], done
        s = token.state
        assert (s.balance("alice"), s.balance("herd"), s.balance("bob"), s.supply) == (2 * UNIT, 2 * UNIT, UNIT,
                                                                                        5 * UNIT)
        assert s.consistent() and not s.escrow
        # The same request under the same key, with other terms, is a mistake and says so.
        refused = await change(caller, "wAR", {"Action": "Transfer", "From": "alice", "To": "bob", "Amount": 2,
                                               "Ref": "gift-1", "T": 4})
        assert refused["Action"] == "Error" and refused["Code"] == "DUPLICATE_REF"
    finally:
        await token.stop()
        await caller.close()
        await here.close()
    # Once each in the log, and the log replays to the live state.
    [replayed] = [r for r in replay_all(db, state_for) if r.actor == "token:wAR"]
    assert replayed.digest == token.state.digest() and replayed.slot == 5  # Configure, Mint, Hold, Settle, Transfer


@pytest.mark.parametrize("kind", ["Mint", "Transfer"])
async def test_a_change_without_a_ref_gets_one_so_its_retries_are_keyed(kind):
    seen = []

    class Recorder:
        async def call(self, to, msg, timeout=10.0):
            seen.append(msg)
            if len(seen) == 1:
                raise TimeoutError("lost")
            return {"Action": f"{kind}-Done"}

    await change(Recorder(), "wAR", {"Action": kind, "T": 1})
    assert len(seen) == 2 and seen[0]["Ref"] == seen[1]["Ref"] and seen[0]["Ref"].startswith(kind.lower() + ":")


async def test_a_fresh_change_refuses_a_key_someone_else_used():
    class Ledger:
        async def call(self, to, msg, timeout=10.0):
            return {"Action": "Hold-Done", "Balance": 1, "Repeat": True}

    held = await change(Ledger(), "wAR", {"Action": "Hold", "Escrow": "herd:r1", "T": 1}, fresh=True)
    assert held["Action"] == "Error" and held["Code"] == "DUPLICATE_ESCROW"
    assert (await change(Ledger(), "wAR", {"Action": "Hold", "Escrow": "herd:r1", "T": 1}))["Action"] == "Hold-Done"
