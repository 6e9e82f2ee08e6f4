"""The actor runtime: handler tables, mailboxes, the bus."""

import asyncio

import pytest

from server.core.actors import Actor, LocalBus, MailboxFull, action


async def test_first_matching_handler_wins_and_unknown_messages_are_survived():
    seen = []
    a = Actor("a")
    a.handle("greet", action("Greet"), lambda m: seen.append(("greet", m["N"])))
    a.handle("anything-big", lambda m: m.get("N", 0) > 10, lambda m: seen.append(("big", m["N"])))
    a.handle("greet-again", action("Greet"), lambda m: seen.append(("never", m["N"])))
    for msg in ({"Action": "Greet", "N": 1}, {"Action": "Other", "N": 50}, {"Action": "Nope"}, {"Action": "Greet", "N": 99}):
        await a.dispatch(msg)
    assert seen == [("greet", 1), ("big", 50), ("greet", 99)]


async def test_a_general_match_before_an_action_match_is_not_bypassed():
    seen = []
    a = Actor("a")
    a.handle("everything", lambda m: True, lambda m: seen.append("everything"))
    a.handle("greet", action("Greet"), lambda m: seen.append("greet"))
    await a.dispatch({"Action": "Greet"})
    assert seen == ["everything"]


async def test_mailbox_is_bounded_and_a_failing_handler_does_not_stop_the_actor():
    done = asyncio.Event()
    handled = []

    def boom(m):
        raise ValueError("bad message")

    a = Actor("a")
    a.mailbox = asyncio.Queue(2)
    a.handle("boom", action("Boom"), boom)
    a.handle("ok", action("Ok"), lambda m: (handled.append(m["N"]), done.set()))
    a.deliver({"Action": "Boom"})
    a.deliver({"Action": "Ok", "N": 1})
    with pytest.raises(MailboxFull):
        a.deliver({"Action": "Ok", "N": 2})
    a.start()
    await asyncio.wait_for(done.wait(), 2)
    assert handled == [1]
    await a.stop()


async def test_bus_call_gets_the_reply():
    bus = LocalBus()
    echo = Actor("echo")
    echo.handle("ask", action("Ask"), lambda m: bus.send(m["ReplyTo"], {"Action": "Answer", "Echo": m["Q"]}))
    bus.register(echo)
    echo.start()
    assert (await bus.call("echo", {"Action": "Ask", "Q": 42}))["Echo"] == 42
    with pytest.raises(LookupError):
        await bus.call("nobody", {"Action": "Ask"})
    await echo.stop()


async def test_an_inline_handler_runs_at_once_when_idle_and_keeps_the_order_when_busy():
    seen = []
    gate = asyncio.Event()

    class Room(Actor):
        def __init__(self):
            super().__init__("room")
            self.handle("move", action("Move"), lambda m: seen.append(m["N"]), inline=True)
            self.handle("slow", action("Slow"), self.slow)

        async def slow(self, msg):
            await gate.wait()
            seen.append("slow")

    room = Room()
    room.start()
    room.deliver({"Action": "Move", "N": 1})
    assert seen == [1]  # handled in the sender's call: no task switch
    room.deliver({"Action": "Slow"})
    await asyncio.sleep(0.01)  # the room is busy with Slow now
    room.deliver({"Action": "Move", "N": 2})
    room.deliver({"Action": "Move", "N": 3})
    assert seen == [1]  # queued behind Slow, not run ahead of it
    gate.set()
    await asyncio.sleep(0.01)
    assert seen == [1, "slow", 2, 3]
    room.deliver({"Action": "Move", "N": 4})
    assert seen == [1, "slow", 2, 3, 4] and room.handled == 5
    await room.stop()


async def test_an_inline_handler_that_fails_is_logged_and_the_actor_goes_on(caplog):
    class Room(Actor):
        def __init__(self):
            super().__init__("room")
            self.handle("move", action("Move"), lambda m: 1 / 0, inline=True)
            self.errors = 0

        def on_handler_error(self, msg):
            self.errors += 1

    room = Room()
    room.start()
    room.deliver({"Action": "Move"})
    assert room.errors == 1 and not room.busy
    await room.stop()
