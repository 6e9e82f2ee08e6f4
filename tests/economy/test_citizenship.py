"""Citizenship over real websockets: open (everyone), invite (codes from the operator, each once) and approval (the
operator's queue); non-citizens walk and chat but get no allowance and cannot trade (NOT_A_CITIZEN, saying how to
become one); becoming a citizen grants the allowance once; new accounts per address are limited; the operator's
commands; replay verifies the accounts' log."""

import asyncio

import pytest

from client.net import GameClient, ServerError
from server.app import Server
from server.core.units import UNIT
from server.world.reader import load_world

from conftest import FAST, ServerProcess, run_cli, world_with


async def serving(tmp_path, citizenship: str):
    srv = Server(load_world(world_with(tmp_path, citizenship)), f"sqlite:///{tmp_path / 'c.db'}", "127.0.0.1", 0, FAST)
    await srv.start()
    return srv


async def joined(srv, name: str, **fields) -> GameClient:
    c = await GameClient.connect(srv.url)
    await c._enter("Register", Name=name, Password="pw-secret", **fields)
    return c


async def admin(srv, action: str, **fields) -> dict:
    c = await GameClient.connect(srv.url)
    try:
        return await c.request(action, **{"Key": srv.runtime.admin_key, **fields})
    finally:
        await c.close()


async def war(c: GameClient) -> int:
    return (await c.request("Balance"))["Balances"]["wAR"]


async def until_war(c: GameClient, amount: int) -> None:
    for _ in range(100):
        if await war(c) == amount:
            return
        await asyncio.sleep(0.02)
    assert await war(c) == amount


async def test_in_an_open_world_everyone_is_a_citizen(tmp_path):
    srv = await serving(tmp_path, 'mode = "open"')
    try:
        alice = await joined(srv, "alice")
        assert (await alice.request("Citizenship"))["Citizen"] is True
        assert await war(alice) == 10 * UNIT
        await alice.request("PlaceOrder", Side="buy", Price=10**11, Quantity=10**10)  # may trade
    finally:
        await srv.stop()


async def test_an_invite_world_lets_in_whoever_has_a_code_once(tmp_path):
    srv = await serving(tmp_path, 'mode = "invite"')
    try:
        bob = await joined(srv, "bob")
        assert await war(bob) == 0  # no allowance for a non-citizen
        await bob.chat("hello, I can still talk")  # walking and chatting are for everyone
        with pytest.raises(ServerError) as no:
            await bob.request("PlaceOrder", Side="buy", Price=10**11, Quantity=10**10)
        assert no.value.code == "NOT_A_CITIZEN" and "invite code" in no.value.frame["Message"]
        with pytest.raises(ServerError) as no:
            await bob.request("Petition", Text="Please let me petition the King.")
        assert no.value.code == "NOT_A_CITIZEN"
        status = await bob.request("Citizenship")
        assert (status["Mode"], status["Citizen"]) == ("invite", False)
        codes = (await admin(srv, "AdminInvite", Count=2))["Codes"]
        assert len(codes) == 2 and len(set(codes)) == 2
        with pytest.raises(ServerError) as no:
            await bob.request("BecomeCitizen", Invite="not-a-code")
        assert no.value.code == "BAD_INVITE"
        became = await bob.request("BecomeCitizen", Invite=codes[0])
        assert became["Citizen"] is True
        await until_war(bob, 10 * UNIT)  # the allowance, once
        await bob.request("PlaceOrder", Side="buy", Price=10**11, Quantity=10**10)
        with pytest.raises(ServerError) as no:  # a citizen may petition: only the King's absence from this room stops him
            await bob.request("Petition", Text="Please let me petition the King.")
        assert no.value.code == "NO_NPC_HERE"
        carol = await joined(srv, "carol")
        with pytest.raises(ServerError) as no:
            await carol.request("BecomeCitizen", Invite=codes[0])  # used already
        assert no.value.code == "BAD_INVITE"
        dave = await joined(srv, "dave", Invite=codes[1])  # a code at registration: a citizen at once
        assert (await dave.request("Citizenship"))["Citizen"] is True and await war(dave) == 10 * UNIT
        with pytest.raises(ServerError) as no:
            await joined(srv, "erin", Invite=codes[1])
        assert no.value.code == "BAD_INVITE"
        # logging in again grants nothing more
        await bob.close()
        again = await GameClient.connect(srv.url)
        await again.login("bob", "pw-secret")
        assert await war(again) == 10 * UNIT - 10**10 // 10  # 0.01 LLAMA at 0.1 wAR is held by his order
    finally:
        await srv.stop()
    replay = run_cli("replay", "--db", f"sqlite:///{tmp_path / 'c.db'}")
    assert replay.returncode == 0, replay.stdout + replay.stderr


async def test_an_approval_world_queues_applicants_for_the_operator(tmp_path):
    srv = await serving(tmp_path, 'mode = "approval"')
    try:
        frank = await joined(srv, "frank")
        status = await frank.request("Citizenship")
        assert (status["Citizen"], status["Pending"]) == (False, True) and "apply" in status["How"]
        with pytest.raises(ServerError) as no:
            await frank.request("PlaceOrder", Side="sell", Price=10**11, Quantity=10**10)
        assert no.value.code == "NOT_A_CITIZEN"
        assert (await frank.request("BecomeCitizen"))["Pending"] is True  # applying twice is one application
        queue = await admin(srv, "AdminCitizens")
        assert [name for name, _ in queue["Applicants"]] == ["frank"] and queue["Mode"] == "approval"
        with pytest.raises(ServerError) as no:
            await admin(srv, "AdminApprove", Name="nobody")
        assert no.value.code == "UNKNOWN_PLAYER"
        assert (await admin(srv, "AdminApprove", Name="FRANK"))["Name"] == "frank"
        await until_war(frank, 10 * UNIT)
        assert (await frank.request("Citizenship"))["Citizen"] is True
        assert (await admin(srv, "AdminCitizens"))["Applicants"] == []
        with pytest.raises(ServerError) as no:
            await admin(srv, "AdminApprove", Name="frank", Key="wrong")
        assert no.value.code == "FORBIDDEN"
    finally:
        await srv.stop()


async def test_new_accounts_per_address_are_limited(tmp_path):
    srv = await serving(tmp_path, 'mode = "open"\nnew_accounts_per_hour = 2')
    try:
        await joined(srv, "gina")
        await joined(srv, "hank")
        with pytest.raises(ServerError) as no:
            await joined(srv, "ivan")
        assert no.value.code == "TOO_MANY_ACCOUNTS" and "2 new accounts an hour" in no.value.frame["Message"]
        c = await GameClient.connect(srv.url)
        await c.login("gina", "pw-secret")  # logging in is not limited
    finally:
        await srv.stop()


def test_a_bad_citizenship_setting_is_a_clear_error(tmp_path):
    from server.world.maps import WorldError

    with pytest.raises(WorldError, match=r"\[citizenship\].mode is one of open, invite, approval"):
        load_world(world_with(tmp_path, 'mode = "closed"'))


async def test_the_operator_commands(tmp_path):
    world = world_with(tmp_path, 'mode = "approval"')
    db = f"sqlite:///{tmp_path / 'ops.db'}"
    server = ServerProcess(db, None, world)
    try:
        c = await GameClient.connect(server.url)
        await c.register("judy", "pw-secret")
        common = ("--url", server.url, "--db", db)
        codes = await asyncio.to_thread(run_cli, "admin", "invite", "--count", "3", *common)
        assert codes.returncode == 0 and len(codes.stdout.split()) == 3, codes.stderr
        queue = await asyncio.to_thread(run_cli, "admin", "citizens", *common)
        assert queue.returncode == 0 and "1 waiting for approval" in queue.stdout and "judy" in queue.stdout
        done = await asyncio.to_thread(run_cli, "admin", "approve", "judy", *common)
        assert done.returncode == 0 and "judy is a citizen" in done.stdout
        missing = await asyncio.to_thread(run_cli, "admin", "approve", "nobody", *common)
        assert missing.returncode == 2 and "UNKNOWN_PLAYER" in missing.stderr
        await c.close()
    finally:
        server.stop()


async def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_and_none_is_local(tmp_path):
    """`serve --trusted-proxy`: the per-address limit counts the clients a reverse proxy forwards for (not the proxy),
    a client cannot pick its address by writing the header itself, and a forwarded client is never 'this machine'
    for admin requests. Without the flag the header is ignored."""
    world = world_with(tmp_path, 'mode = "open"\nnew_accounts_per_hour = 1')

    async def register(url: str, name: str, forwarded: str | None = None) -> GameClient:
        headers = {"X-Forwarded-For": forwarded} if forwarded else None
        c = await GameClient.connect(url, additional_headers=headers)
        await c._enter("Register", Name=name, Password="pw-secret")
        return c

    db = f"sqlite:///{tmp_path / 'proxy.db'}"
    server = ServerProcess(db, None, world, "--trusted-proxy", "127.0.0.1")
    try:
        await register(server.url, "kim", "203.0.113.7")
        await register(server.url, "lee", "203.0.113.8")  # another client behind the same proxy
        for forwarded in ("203.0.113.7", "198.51.100.1, 203.0.113.7"):  # the second: a made-up first hop
            with pytest.raises(ServerError) as no:
                await register(server.url, "max", forwarded)
            assert no.value.code == "TOO_MANY_ACCOUNTS", forwarded
        key = (tmp_path / "proxy.db.admin-key").read_text().strip()
        far = await GameClient.connect(server.url, additional_headers={"X-Forwarded-For": "203.0.113.7"})
        with pytest.raises(ServerError) as no:
            await far.request("AdminCitizens", Key=key)
        assert no.value.code == "FORBIDDEN"
        near = await GameClient.connect(server.url)  # the machine itself, not through the proxy
        assert (await near.request("AdminCitizens", Key=key))["Mode"] == "open"
    finally:
        server.stop()
    plain = ServerProcess(f"sqlite:///{tmp_path / 'plain.db'}", None, world)
    try:
        await register(plain.url, "kim", "203.0.113.7")
        with pytest.raises(ServerError) as no:
            await register(plain.url, "lee", "203.0.113.8")  # the header is not trusted: one address, 127.0.0.1
        assert no.value.code == "TOO_MANY_ACCOUNTS"
    finally:
        plain.stop()
