"""Wallets over the wire: the starting allowance, balances, transfers with X- tags and their notices, token
info, operator credits. After every test, per token: balances + escrow = supply."""

import os
import stat

import pytest

from client.net import GameClient, ServerError
from server.economy.ledger import LLAMA_CAP, UNIT

from conftest import ServerProcess, run_cli, until

pytestmark = pytest.mark.usefixtures("ledgers_consistent")


@pytest.fixture
def ledgers_consistent(server):
    yield
    for ledger in (server.runtime.ledger, server.runtime.llama):
        assert ledger.state.consistent(), ledger.id


def notices(client, kind):
    return [e for e in client.events if e["Action"] == kind]


async def test_new_accounts_get_the_starting_allowance_once(connect):
    alice = await connect("alice")
    await until(alice, lambda: notices(alice, "Credit-Notice"))
    [notice] = notices(alice, "Credit-Notice")
    assert (notice["Token"], notice["Quantity"], notice["Reason"], notice["Balance"]) == ("wAR", 10 * UNIT,
                                                                                        "allowance", 10 * UNIT)
    assert (await alice.request("Balance"))["Balances"] == {"wAR": 10 * UNIT, "LLAMA": 0}
    await alice.request("Logout")
    await alice.login("alice", "pw-secret")
    assert (await alice.request("Balance", Token="wAR"))["Balances"] == {"wAR": 10 * UNIT}  # not twice


async def test_transfer_with_tags_and_both_notices(connect):
    alice, bob = await connect("alice"), await connect("bob")
    resp = await alice.request("Transfer", Token="wAR", Recipient="BOB", Quantity=3 * UNIT,
                               Tags={"X-Note": "for the hay"})
    assert (resp["Recipient"], resp["Balance"]) == ("bob", 7 * UNIT)
    debit = await alice.wait_for(lambda e: e["Action"] == "Debit-Notice", past=True)
    credit = await bob.wait_for(lambda e: e["Action"] == "Credit-Notice" and e["Reason"] == "transfer", past=True)
    assert (debit["Recipient"], debit["Quantity"], debit["Balance"], debit["Tags"]) == (
        "bob", 3 * UNIT, 7 * UNIT, {"X-Note": "for the hay"})
    assert (credit["Sender"], credit["Balance"], credit["Tags"]) == ("alice", 13 * UNIT, {"X-Note": "for the hay"})


async def test_a_transfer_resent_with_its_key_after_a_lost_answer_moves_money_once(connect):
    alice, bob = await connect("alice"), await connect("bob")
    first = await alice.request("Transfer", Recipient="bob", Quantity=UNIT, Key="gift-7")
    await alice.close()  # the answer might as well have been lost with the connection
    alice = await connect()
    await alice.login("alice", "pw-secret")
    again = await alice.request("Transfer", Recipient="bob", Quantity=UNIT, Key="gift-7")
    assert first["Balance"] == again["Balance"] == 9 * UNIT and again["Repeat"] and "Repeat" not in first
    with pytest.raises(ServerError) as exc:  # the same key for another transfer is a mistake
        await alice.request("Transfer", Recipient="bob", Quantity=2 * UNIT, Key="gift-7")
    assert exc.value.code == "DUPLICATE_REF"
    assert (await bob.request("Transfer", Recipient="alice", Quantity=UNIT, Key="gift-7"))["Balance"] == 10 * UNIT
    assert (await alice.request("Balance"))["Balances"]["wAR"] == 10 * UNIT  # once each way


@pytest.mark.parametrize("fields, code", [
    ({"Recipient": "bob", "Quantity": 11 * UNIT}, "INSUFFICIENT_FUNDS"),
    ({"Recipient": "bob", "Quantity": 1, "Token": "LLAMA"}, "INSUFFICIENT_FUNDS"),  # nobody has LLAMA yet
    ({"Recipient": "bob", "Quantity": 0}, "BAD_AMOUNT"),
    ({"Recipient": "bob", "Quantity": -5}, "BAD_AMOUNT"),
    ({"Recipient": "bob", "Quantity": "5"}, "BAD_REQUEST"),
    ({"Recipient": "nobody", "Quantity": 1}, "UNKNOWN_ACCOUNT"),
    ({"Recipient": "room:plaza", "Quantity": 1}, "UNKNOWN_ACCOUNT"),
    ({"Recipient": "bob", "Quantity": 1, "Token": "DOGE"}, "BAD_REQUEST"),
    ({"Recipient": "bob", "Quantity": 1, "Tags": {"Note": "no X- prefix"}}, "BAD_REQUEST"),
    ({"Recipient": "bob", "Quantity": 1, "Tags": {"X-Big": "y" * 300}}, "BAD_REQUEST"),
])
async def test_bad_transfers_move_nothing(connect, fields, code):
    alice, bob = await connect("alice"), await connect("bob")
    with pytest.raises(ServerError) as exc:
        await alice.request("Transfer", **fields)
    assert exc.value.code == code
    for who in (alice, bob):
        assert (await who.request("Balance"))["Balances"] == {"wAR": 10 * UNIT, "LLAMA": 0}


async def test_wallet_needs_a_login_but_token_info_does_not(connect):
    stranger = await connect()
    with pytest.raises(ServerError) as exc:
        await stranger.request("Balance")
    assert exc.value.code == "NOT_LOGGED_IN"
    info = await stranger.request("TokenInfo", Token="LLAMA")
    assert (info["Cap"], info["TotalSupply"], info["Denomination"]) == (LLAMA_CAP, 0, 12)
    await connect("alice")
    assert (await stranger.request("TokenInfo"))["TotalSupply"] == 10 * UNIT  # wAR: the one allowance
    assert (await stranger.request("Balances"))["Balances"] == {"alice": 10 * UNIT}


def test_operator_credits_wAR_but_never_LLAMA(tmp_path):
    db = f"sqlite:///{tmp_path / 'w.db'}"
    server = ServerProcess(db)
    try:
        import asyncio

        async def register():
            c = await GameClient.connect(server.url)
            await c.register("alice", "pw-secret")
            await c.close()

        asyncio.run(register())
        key = tmp_path / "w.db.admin-key"
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        ok = run_cli("admin", "credit", "alice", "2.5", "--token", "wAR", "--url", server.url, "--db", db)
        assert ok.returncode == 0, ok.stderr
        assert "credited 2.5 wAR to alice; balance now 12.5 wAR" in ok.stdout
        llama = run_cli("admin", "credit", "alice", "1", "--token", "LLAMA", "--url", server.url, "--db", db)
        assert llama.returncode == 2 and "NOT_A_MINTER" in llama.stderr
        (tmp_path / "wrong.key").write_text("guess\n")
        forged = run_cli("admin", "credit", "alice", "1", "--url", server.url, "--admin-key-file",
                         str(tmp_path / "wrong.key"))
        assert forged.returncode == 2 and "FORBIDDEN" in forged.stderr
        nobody = run_cli("admin", "credit", "nobody", "1", "--url", server.url, "--db", db)
        assert nobody.returncode == 2 and "UNKNOWN_ACCOUNT" in nobody.stderr
    finally:
        server.stop()
