"""The wAR ledger's rules and the herd's pricing, pure."""

import pytest

from npcs.inference.herd import HerdConfig, Pricing
from server.economy.ledger import UNIT, TokenState, refusal


def ledger(cap=None):
    s = TokenState()
    s.apply({"Action": "Configure", "Cap": cap, "Minters": ["operator", "allowance"], "T": 0})
    return s


def apply(state, **msg):
    no = refusal(state, msg)
    if no is None:
        state.apply({**msg, "T": 0})
    return no


def test_escrow_moves_money_and_supply_is_conserved():
    s = ledger()
    assert apply(s, Action="Mint", To="alice", Amount=5 * UNIT, By="operator") is None
    assert apply(s, Action="Hold", Escrow="e1", From="alice", Amount=2 * UNIT, For="x") is None
    assert (s.balance("alice"), s.supply) == (3 * UNIT, 5 * UNIT) and s.consistent()
    assert apply(s, Action="Settle", Escrow="e1", To="herd") is None
    assert s.balance("herd") == 2 * UNIT and s.consistent()
    assert apply(s, Action="Hold", Escrow="e2", From="alice", Amount=UNIT, For="x") is None
    assert apply(s, Action="Refund", Escrow="e2") is None
    assert s.balance("alice") == 3 * UNIT and not s.escrow and s.consistent()


@pytest.mark.parametrize("msg, code", [
    (dict(Action="Mint", To="a", Amount=0, By="operator"), "BAD_AMOUNT"),
    (dict(Action="Mint", To="a", Amount=1.5, By="operator"), "BAD_AMOUNT"),
    (dict(Action="Mint", To="a", Amount=True, By="operator"), "BAD_AMOUNT"),
    (dict(Action="Mint", To="a", Amount=5, By="alice"), "NOT_A_MINTER"),
    (dict(Action="Mint", To="a", Amount=5), "NOT_A_MINTER"),
    (dict(Action="Transfer", From="a", To="b", Amount=-1), "BAD_AMOUNT"),
    (dict(Action="Transfer", From="a", To="b", Amount=11), "INSUFFICIENT_FUNDS"),
    (dict(Action="Hold", Escrow="e", From="a", Amount=11, For="x"), "INSUFFICIENT_FUNDS"),
    (dict(Action="Hold", Escrow="open", From="a", Amount=1, For="x"), "DUPLICATE_ESCROW"),
    (dict(Action="Settle", Escrow="nope", To="b"), "UNKNOWN_ESCROW"),
    (dict(Action="Refund", Escrow="nope"), "UNKNOWN_ESCROW"),
])
def test_refusals(msg, code):
    s = ledger()
    apply(s, Action="Mint", To="a", Amount=12, By="operator")
    apply(s, Action="Hold", Escrow="open", From="a", Amount=2, For="x")
    before = s.to_data()
    assert refusal(s, msg)[0] == code
    assert s.to_data() == before


def test_the_cap_and_the_minters_are_enforced():
    llama = TokenState()
    llama.apply({"Action": "Configure", "Cap": 300, "Minters": ["fed"], "T": 0})
    assert apply(llama, Action="Mint", To="a", Amount=300, By="fed") is None
    assert apply(llama, Action="Mint", To="a", Amount=1, By="fed")[0] == "CAP_EXCEEDED"
    assert apply(llama, Action="Mint", To="a", Amount=1, By="operator")[0] == "NOT_A_MINTER"
    assert apply(llama, Action="Allowance", To="b", Amount=1)[0] == "NOT_A_MINTER"
    assert llama.supply == 300 and llama.consistent()


def test_the_starting_allowance_is_granted_once():
    s = ledger()
    assert apply(s, Action="Allowance", To="alice", Amount=10) is None
    assert apply(s, Action="Allowance", To="alice", Amount=10)[0] == "ALREADY_GRANTED"
    assert s.balance("alice") == 10 and s.supply == 10 and s.consistent()


def test_a_closed_escrow_cannot_be_closed_again():
    s = ledger()
    apply(s, Action="Mint", To="a", Amount=10, By="operator")
    apply(s, Action="Hold", Escrow="e", From="a", Amount=4, For="x")
    assert apply(s, Action="Settle", Escrow="e", To="herd") is None
    assert apply(s, Action="Refund", Escrow="e")[0] == "UNKNOWN_ESCROW"  # never a refund after a charge
    assert (s.balance("a"), s.balance("herd")) == (6, 4) and s.consistent()


CFG = HerdConfig(base_fee=1000, token_fee=10, rise=1.5, max_multiplier=3.0, half_life_ms=1000)


def test_fee_formula_counts_tokens_and_the_queue():
    p = Pricing(CFG)
    assert p.fee(50, 10, waiting=0, t_ms=0) == 1000 + 10 * 60
    assert p.fee(50, 10, waiting=3, t_ms=0) == 1608  # x 1.005 when jobs wait, rounded up


def test_multiplier_rises_under_load_is_capped_and_decays_when_idle():
    p = Pricing(CFG)
    for t in range(5):
        p.bump(t)
    assert p.current(4) == pytest.approx(3.0)  # capped (read at the last bump)
    assert p.current(1004) == pytest.approx(2.0)  # one half-life idle: halfway back to 1
    assert p.current(10_000) == pytest.approx(1.0, abs=0.01)
    assert p.fee(0, 0, 0, 1004) == 2000
