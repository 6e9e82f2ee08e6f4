"""Write an NPC for a Llama Land world as a small Python class (docs/npcs-sdk.md walks through one).

    from client.npc_sdk import Npc, NpcError, action, fixed, Text

    class Echo(Npc):
        @action(title="Echo", description="I say it back, for a tip", price=fixed("0.1", "wAR"),
                fields={"words": Text(max_length=40)})
        async def echo(self, request, words):
            await self.announce(f"{request.player} says {words}")
            return f"you said: {words}"          # the player's NpcAnswer; their 0.1 wAR is now Echo's

    Echo().run("ws://127.0.0.1:8765/", name="Echo", key="npc-…")   # the key from `llama-land admin npc add`

Each `@action` method is one declared action: its fields (Text, Number, Choice) and price (free, fixed,
quoted) are sent to the server at login, which checks every player's request against them and holds the price
in escrow before the method is called. Return the answer's text (or {"Text": …, "Data": {…}}), or raise NpcError to refuse (the player is
refunded). Each request runs in a task of its own; the server refunds one not answered in time. The connection
is re-made after a drop, with backoff; a revoked key, a wrong key or a newer login of the same NPC ends `run`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from client.net import GameClient, ServerError
from server.core.forms import check_declarations
from server.core.units import parse_amount

log = logging.getLogger("llama_land.npc_sdk")
FINAL_CLOSES = {4000: "this NPC logged in elsewhere", 4003: "the operator revoked this NPC's key"}


class NpcError(Exception):
    """Raise in an action to refuse the request: the player gets NPC_ERROR with this message and their price back."""


class Stopped(Exception):
    """run() ended for good: the key was refused or revoked, or another login took this NPC over."""


def Text(max_length: int = 100, min_length: int = 0, title: str | None = None, default: str | None = None,
         description: str | None = None) -> dict[str, Any]:
    return _field({"type": "string", "minLength": min_length, "maxLength": max_length}, title, default, description)


def Number(minimum: int = 0, maximum: int = 10**9, title: str | None = None, default: int | None = None,
           description: str | None = None) -> dict[str, Any]:
    return _field({"type": "integer", "minimum": minimum, "maximum": maximum}, title, default, description)


def Choice(options: list[str], title: str | None = None, default: str | None = None,
           description: str | None = None) -> dict[str, Any]:
    return _field({"type": "string", "enum": list(options)}, title, default, description)


def _field(schema: dict[str, Any], title: str | None, default: Any, description: str | None) -> dict[str, Any]:
    for key, value in (("title", title), ("default", default), ("description", description)):
        if value is not None:
            schema[key] = value
    return schema


def free() -> dict[str, Any]:
    return {"Kind": "none"}


def fixed(amount: str | int, token: str = "wAR") -> dict[str, Any]:
    """A price in whole tokens, as a person writes it: fixed("0.5"), fixed(2, "LLAMA")."""
    return {"Kind": "fixed", "Amount": parse_amount(amount), "Token": token}


def quoted(most: str | int, token: str = "wAR") -> dict[str, Any]:
    """A price the NPC names per request (its `quote_<action>` method), at most `most` whole tokens."""
    return {"Kind": "quoted", "Max": parse_amount(most), "Token": token}


def action(title: str | None = None, description: str = "", price: dict[str, Any] | None = None,
           fields: dict[str, dict[str, Any]] | None = None) -> Callable[[Callable], Callable]:
    def mark(fn: Callable) -> Callable:
        fn.__npc_action__ = {"Name": fn.__name__, "Title": title or fn.__name__.replace("_", " ").capitalize(),
                             "Description": description, "Fields": fields or {}, "Price": price or free()}
        return fn
    return mark


@dataclass(frozen=True)
class Request:
    """One player's use of an action: who, which, with what (checked by the server), and what they paid."""

    id: str
    player: str
    action: str
    fields: dict[str, Any]
    price: int  # base units held for it (0 if free)
    token: str | None
    t: int  # when the server received it, ms


class Npc:
    """Subclass, add @action methods, and run(). `on_ready` is called after every (re)connection."""

    def __init__(self) -> None:
        self.client: GameClient | None = None
        self.me: dict[str, Any] = {}  # what NpcLogin answered: Name, Id, Room, X, Y, TimeoutMs, MaxPending
        self.tasks: set[asyncio.Task] = set()
        # Paid requests answered as the connection went: the server may have settled them or not. Asked about
        # (Outcomes) after the next login, so on_paid is called for every one that was settled, and only once.
        self.in_doubt: dict[str, Request] = {}

    @classmethod
    def declarations(cls) -> list[dict[str, Any]]:
        """This class's actions as the server will check them (a bad schema fails here, before connecting)."""
        found: dict[str, dict[str, Any]] = {}  # in the order they are written, a subclass's after its base's
        for klass in reversed(cls.__mro__):
            for name, fn in vars(klass).items():
                if hasattr(fn, "__npc_action__"):
                    found[name] = fn.__npc_action__
        return check_declarations(list(found.values()))

    # --- what an action may do ----------------------------------------------------------------------------------

    async def ask(self, action_name: str, **fields: Any) -> dict[str, Any]:
        for attempt in range(5):
            if self.client is None:
                raise ConnectionError("not connected")
            try:
                return await self.client.request(action_name, **fields)
            except ServerError as exc:  # dropped for the connection's rate: sent again a little later
                if exc.code != "RATE_LIMITED" or attempt == 4:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    async def announce(self, text: str) -> None:
        """Say a line in the NPC's room, for everyone there."""
        await self.ask("Announce", Text=text)

    async def tell(self, player: str, text: str) -> None:
        """Whisper to a player who asked this NPC something in the last ten minutes."""
        await self.ask("Tell", To=player, Text=text)

    async def pay(self, player: str, quantity: int, token: str = "wAR", key: str | None = None,
                  memo: str | None = None) -> dict[str, Any]:
        """Pay `quantity` base units from this NPC's own account. Give a key to make a retry pay only once."""
        fields: dict[str, Any] = {"To": player, "Quantity": quantity, "Token": token, "Key": key or uuid.uuid4().hex}
        if memo:
            fields["Memo"] = memo
        return await self.ask("Pay", **fields)

    async def funds(self, token: str = "wAR") -> int:
        return (await self.ask("Funds", Token=token))["Balance"]

    async def market(self) -> dict[str, Any]:
        """The market's MarketInfo (last price, 24 h change, volume), readable by anyone."""
        return await self.ask("MarketInfo")

    async def on_ready(self) -> None:
        """Called once logged in and declared, after every (re)connection."""

    async def on_paid(self, request: Request, paid: int) -> None:
        """Called once the server settled an answered request: `paid` base units are in this NPC's account now.
        (An action's return value may not reach the server in time; count what was paid here.)"""

    # --- the connection -----------------------------------------------------------------------------------------

    def run(self, url: str, name: str, key: str) -> None:
        asyncio.run(self.serve(url, name, key))

    async def serve(self, url: str, name: str, key: str, backoff_max: float = 30.0) -> None:
        """Connect, log in, declare, answer; reconnect after a drop. In a world spread over processes `url` may be
        any of them: a login there is told which one serves the NPC's room, and goes there. Raises Stopped when it
        must not come back."""
        actions = self.declarations()
        delay, target, redirects = 1.0, url, 0
        while True:
            try:
                self.client = await GameClient.connect(target)
            except OSError as exc:
                log.warning("cannot reach %s (%s); again in %.1f s", target, exc, delay)
                target, redirects = url, 0  # after a failure, ask the world's address where the room is now
                await asyncio.sleep(delay)
                delay = min(backoff_max, delay * 2)
                continue
            try:
                self.client.listeners.append(self._on_event)
                self.me = await self.client.request("NpcLogin", Name=name, Key=key)
                await self.client.request("Declare", Actions=actions)
                log.info("%s is in %s at (%s, %s)", name, self.me["Room"], self.me["X"], self.me["Y"])
                delay, redirects = 1.0, 0
                await self._resolve_doubts()
                await self.on_ready()
                code = await self.client.closed
            except ServerError as exc:
                await self.client.close()
                if exc.code in ("BAD_CREDENTIALS", "BAD_DECLARATION", "BAD_NAME"):
                    raise Stopped(f"{exc.code}: {exc.frame.get('Message')}") from None
                if exc.code == "UNAVAILABLE" and exc.frame.get("Url") and redirects < 3:
                    # the NPC's room is served by another process of the world: go there at once
                    target, redirects = exc.frame["Url"], redirects + 1
                    log.info("%s is served at %s", exc.frame.get("Room"), target)
                    continue
                log.warning("server said %s; again in %.1f s", exc, delay)
                code = None
            except ConnectionError:
                code = self.client.ws.close_code
            if code in FINAL_CLOSES:
                raise Stopped(FINAL_CLOSES[code])
            log.warning("connection lost (%s); again in %.1f s", code, delay)
            target, redirects = url, 0
            await asyncio.sleep(delay)
            delay = min(backoff_max, delay * 2)

    def _on_event(self, ev: dict[str, Any]) -> None:
        if ev.get("Action") in ("NpcRequest", "NpcQuoteRequest"):
            task = asyncio.get_running_loop().create_task(self._handle(ev))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _handle(self, ev: dict[str, Any]) -> None:
        request = Request(ev["RequestId"], ev["Player"], ev["Name"], ev["Fields"], ev.get("Price") or 0,
                          ev.get("Token"), ev["T"])
        quoting = ev["Action"] == "NpcQuoteRequest"
        method = getattr(self, f"quote_{request.action}" if quoting else request.action, None)
        try:
            if method is None:
                raise NpcError(f"{request.action} cannot be {'priced' if quoting else 'done'} now")
            result = method(request, **request.fields)
            if inspect.isawaitable(result):
                result = await result
            if quoting:
                await self.ask("Price", RequestId=request.id, Amount=int(result))
                return
            reply = result if isinstance(result, dict) else {"Text": str(result or "")}
            try:
                done = await self.ask("Answer", RequestId=request.id, **reply)
            except (ConnectionError, asyncio.TimeoutError) as lost:
                if request.price:  # did the answer reach the server, and was it settled? Asked once connected
                    self.in_doubt[request.id] = request
                    if isinstance(lost, asyncio.TimeoutError):  # still connected: ask now
                        await self._resolve_doubts()
                return
            await self.on_paid(request, done["Paid"])
        except NpcError as exc:
            await self._refuse(request, str(exc), quoting)
        except ServerError as exc:  # late (refunded already), or a bad price: nothing more to do for it
            log.info("request %s: %s", request.id, exc)
        except ConnectionError:
            pass  # the server refunds whatever was open when the connection went
        except Exception:
            log.exception("action %s failed", request.action)
            await self._refuse(request, "something went wrong here; you were not charged", quoting)

    async def _resolve_doubts(self, tries: int = 5) -> None:
        """What became of the paid requests answered as the last connection dropped: on_paid for each one the
        server settled; a refunded one is forgotten (the player has their price back)."""
        for _ in range(tries):
            for batch in [list(self.in_doubt)[i:i + 64] for i in range(0, len(self.in_doubt), 64)]:
                outcomes = (await self.ask("Outcomes", RequestIds=batch))["Outcomes"]
                for rid, outcome in outcomes.items():
                    if outcome == "held":  # still being settled or refunded: asked again below
                        continue
                    request = self.in_doubt.pop(rid, None)
                    if request is not None and outcome == "settled":
                        await self.on_paid(request, request.price)
            if not self.in_doubt:
                return
            await asyncio.sleep(1.0)
        log.warning("%d answered requests still open after reconnecting; asked again next time", len(self.in_doubt))

    async def _refuse(self, request: Request, message: str, quoting: bool) -> None:
        try:
            await self.ask("Answer", RequestId=request.id, Error=message)
        except (ServerError, ConnectionError):
            pass
