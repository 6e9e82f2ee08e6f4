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
