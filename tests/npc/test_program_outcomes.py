"""What an NPC program is told when its connection drops at the worst moment — after its answer reached the server,
before the server's reply reached it — and the rest of its own-money requests: Outcomes (the ledgers' record of each
request's escrow), the SDK counting such a request once after reconnecting, a Tell written to the chat log, and
Pay / Funds in a token the world does not have. Real server, real websockets, the default world."""


import pytest
from sqlmodel import select

from client.net import GameClient, ServerError
from server.core.db import ChatLine
from server.core.units import UNIT

from conftest import eventually, near_npc
from test_programs import next_request, placed, player, program, sdk_npc_and_alice, serving, war


async def closed_after_answer(p: GameClient, rid: str, **fields) -> None:
    """Send an Answer and close the connection at once: the frame reaches the server, its reply never comes back."""
    real = p.ws.send

    async def send_then_close(data):
        await real(data)
        p.ws.transport.close()  # flushes what was written, then FIN

    p.ws.send = send_then_close
    with pytest.raises(ConnectionError):
        await p.request("Answer", RequestId=rid, **fields)


async def test_outcomes_tells_a_reconnected_program_what_became_of_its_answers(tmp_path):
    srv = await serving(tmp_path)
    try:
        world = srv.runtime.world
        key, (x, y) = await placed(srv, "Echo")
        echo = await program(srv.url, "Echo", key)
        alice = await player(srv.url, "alice")
        await near_npc(alice, world, (x, y), world.rules.near_radius)
        before = await war(alice)
        await alice.request("Use", Npc="echo", Name="echo", Fields={"words": "paid"})
        paid = await next_request(echo)
        await alice.request("Use", Npc="echo", Name="echo", Fields={"words": "refused"})
        refused = await echo.wait_for(lambda e: e["Action"] == "NpcRequest" and e["Fields"]["words"] == "refused",
                                      timeout=5, past=True)
        await echo.request("Answer", RequestId=refused["RequestId"], Error="no")
        await alice.request("Use", Npc="echo", Name="free", Fields={"side": "heads"})
        free = await echo.wait_for(lambda e: e["Action"] == "NpcRequest" and e["Name"] == "free", timeout=5,
                                   past=True)
        await closed_after_answer(echo, paid["RequestId"], Text="here you are")
        answer = await alice.wait_for(lambda e: e["Action"] == "NpcAnswer", timeout=5, past=True)
        assert answer["RequestId"] == paid["RequestId"] and answer["Paid"] == 2 * UNIT  # settled despite the drop
        await alice.wait_for(lambda e: e["Action"] == "NpcLeft", timeout=5, past=True)  # the free one: NPC_GONE
        echo = await program(srv.url, "Echo", key)
        await alice.request("Use", Npc="echo", Name="echo", Fields={"words": "open"})
        still = await echo.wait_for(lambda e: e["Action"] == "NpcRequest", timeout=5, past=True)
        asked = [paid["RequestId"], refused["RequestId"], free["RequestId"], still["RequestId"], "made-up"]
        got = await echo.request("Outcomes", RequestIds=asked)
        assert got["Outcomes"] == {paid["RequestId"]: "settled", refused["RequestId"]: "refunded",
                                   free["RequestId"]: "unknown", still["RequestId"]: "held", "made-up": "unknown"}
        assert (await echo.request("Funds"))["Balance"] == 2 * UNIT
        assert await war(alice) == before - 4 * UNIT  # the settled one, and the one still open
        for bad in ([], ["x"] * 65, [7], ["x" * 65]):
            with pytest.raises(ServerError) as no:
                await echo.request("Outcomes", RequestIds=bad)
            assert no.value.code == "BAD_REQUEST" and no.value.frame["Ref"], bad
        for action, fields in (("Pay", {"To": "alice", "Quantity": 1, "Token": "DOGE"}), ("Funds", {"Token": "DOGE"})):
            with pytest.raises(ServerError) as no:
                await echo.request(action, **fields)
            assert no.value.code == "BAD_REQUEST" and "Token must be one of wAR, LLAMA" in no.value.frame["Message"]
        # Tell is a whisper like a player's: delivered, and written to the chat log
        await echo.request("Tell", To="alice", Text="your echo is ready")
        await alice.wait_for(lambda e: e["Action"] == "Whisper" and e.get("Npc") == "echo", timeout=5, past=True)
        def whispers() -> list:
            with srv.runtime.db.session() as session:
                return session.exec(select(ChatLine).where(ChatLine.scope == "whisper")).all()

        await eventually(lambda: whispers())
        rows = whispers()
        assert [(r.author, r.to, r.text, r.room) for r in rows] == [("Echo", "alice", "your echo is ready", "plaza")]
        await echo.close()
        await alice.close()
    finally:
        await srv.stop()


async def test_the_sdk_counts_a_settle_it_did_not_hear_once_after_reconnecting(tmp_path):
    from client.npc_sdk import Npc, Text, action, fixed

    class Counter(Npc):
        def __init__(self):
            super().__init__()
            self.paid: list[tuple[str, int]] = []
            self.drop: str | None = None  # "after" the next Answer reaches the server, or "before" it is sent
            self.logins = 0

        async def on_ready(self):
            self.logins += 1

        @action(title="Count", price=fixed(1, "wAR"), fields={"what": Text(max_length=10)})
        async def count(self, request, what):
            ws, real, when = self.client.ws, self.client.ws.send, self.drop
            self.drop = None

            async def send(data):
                if when == "before":
                    ws.transport.close()
                await real(data)
                if when == "after":
                    ws.transport.close()

            if when:
                ws.send = send
            return f"counted {what}"

        async def on_paid(self, request, paid):
            self.paid.append((request.fields["what"], paid))

    srv = await serving(tmp_path)
    try:
        npc = Counter()
        running, alice = await sdk_npc_and_alice(srv, npc, "Counter")
        before = await war(alice)
        for what, drop in (("one", None), ("two", "after"), ("three", "before")):
            npc.drop, logins = drop, npc.logins
            sent = await alice.request("Use", Npc="counter", Name="count", Fields={"what": what}, MaxPrice=UNIT)
            outcome = await alice.wait_for(lambda e: e["Action"] in ("NpcAnswer", "NpcFailed") and
                                           e["RequestId"] == sent["RequestId"], timeout=10, past=True)
            assert outcome["Action"] == ("NpcFailed" if drop == "before" else "NpcAnswer"), what
            if drop:  # the SDK comes back by itself, and asks what became of the answer it sent
                await eventually(lambda: npc.logins > logins and not npc.in_doubt)
        await eventually(lambda: len(npc.paid) == 2)
        assert npc.paid == [("one", UNIT), ("two", UNIT)] and not npc.in_doubt  # "three" was refunded: not counted
        assert await war(alice) == before - 2 * UNIT
        assert (await alice.request("Balance"))["Balances"]["wAR"] == before - 2 * UNIT
        running.cancel()
    finally:
        await srv.stop()
