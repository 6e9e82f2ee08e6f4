"""The session as a pure state machine: which request may be sent in which phase, and where it goes.

A connection starts NEW; Hello makes it GREETED (a visitor: public requests only); Register, Login or Resume make
it PLAYING; Logout makes it GREETED again. The route table has one entry per action of the protocol (a test checks
it covers `protocol.ACTIONS` exactly), so a new request is one line here and one handler. Nothing in this module
touches a socket or a clock; server/net/connection.py is the I/O shell around it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from server.core import protocol
from server.core.protocol import Code, ProtocolError


class Phase(enum.Enum):
    NEW = "new"  # connected, no Hello yet
    GREETED = "greeted"  # protocol agreed, nobody logged in
    PLAYING = "playing"  # a player is logged in
    PROGRAM = "program"  # an NPC program is logged in with its key (docs/npcs-sdk.md)


@dataclass(frozen=True)
class Route:
    to: str  # the handler: hello, ping, auth, logout, room, npc, fed, herd, wallet, admin
    who: str  # "anyone" (even before Hello), "visitor" (greeted, not logged in), "greeted", "player", "program"


ROUTES: dict[str, Route] = {
    "Hello": Route("hello", "anyone"),
    "Ping": Route("ping", "greeted"),
    "Register": Route("auth", "visitor"), "Login": Route("auth", "visitor"), "Resume": Route("auth", "visitor"),
    "Logout": Route("logout", "player"),
    # the player's room answers these, or passes them on to the NPC standing there
    **{a: Route("room", "player") for a in ("Move", "Chat", "Whisper", "Who", "Petition", "Joke", "Prophecy",
                                            "HighLow", "Use", "AskPrice")},
    # an NPC program logs in with its key; then these go to its actor, and nothing a player sends is open to it
    "NpcLogin": Route("program-login", "visitor"),
    **{a: Route("program", "program") for a in ("Declare", "Price", "Answer", "Announce", "Tell", "Pay", "Funds",
                                                 "Outcomes")},
    # an NPC answers these from anywhere in the world
    "Quote": Route("npc", "player"), "OracleInfo": Route("npc", "player"), "TraderInfo": Route("npc", "player"),
    "Petitions": Route("fed", "player"), "FedInfo": Route("fed", "greeted"),
    "HerdInfo": Route("herd", "greeted"),
    "Balance": Route("wallet", "player"), "Transfer": Route("wallet", "player"),
    "TokenInfo": Route("wallet", "greeted"), "Balances": Route("wallet", "greeted"),
    **{a: Route("market", "player") for a in ("PlaceOrder", "CancelOrder", "MyOrders")},
    # the market's public data: anyone greeted may read it (a visitor, an NPC program such as a price feed)
    **{a: Route("market", "greeted") for a in ("OrderBook", "Trades", "Candles", "MarketInfo")},
    "AdminCredit": Route("admin", "greeted"), "AdminWithdraw": Route("admin", "greeted"),
    "AdminInvite": Route("admin", "greeted"), "AdminCitizens": Route("admin", "greeted"),
    "AdminApprove": Route("admin", "greeted"), "AdminNpcAdd": Route("admin", "greeted"),
    "AdminNpcRevoke": Route("admin", "greeted"), "AdminNpcs": Route("admin", "greeted"),
    "BecomeCitizen": Route("citizen", "player"), "Citizenship": Route("citizen", "player"),
}
assert ROUTES.keys() == protocol.ACTIONS.keys(), "every protocol action needs a route"


def decide(phase: Phase, msg: dict, player: str | None = None) -> Route:
    """Where a decoded request goes in this phase, or the ProtocolError that answers it."""
    route = ROUTES[msg["Action"]]
    if phase is Phase.PLAYING and route.who == "player" or route.who == "anyone":  # the hot path: a move
        return route
    action, ref = msg["Action"], msg.get("Id")
    if phase is Phase.NEW:
        raise ProtocolError(Code.HELLO_REQUIRED, "send Hello with the protocol version first", ref)
    if route.who == "visitor" and phase in (Phase.PLAYING, Phase.PROGRAM):
        raise ProtocolError(Code.ALREADY_LOGGED_IN, f"already logged in as {player}", ref)
    if route.who == "program" and phase is not Phase.PROGRAM:
        raise ProtocolError(Code.FORBIDDEN, f"{action} is an NPC program's request: log in with NpcLogin and an NPC "
                                            f"key first", ref)
    if route.who == "player" and phase is Phase.PROGRAM:
        raise ProtocolError(Code.FORBIDDEN, f"an NPC program cannot act as a player ({action}): it speaks with "
                                            f"Announce and Tell, and pays with Pay", ref)
    if route.who == "player" and phase is not Phase.PLAYING:
        raise ProtocolError(Code.NOT_LOGGED_IN, f"log in before {action}", ref)
    return route


def after(phase: Phase, action: str) -> Phase:
    """The phase once a request of this action has succeeded."""
    if action == "Hello" and phase is Phase.NEW:
        return Phase.GREETED
    if action in ("Register", "Login", "Resume"):
        return Phase.PLAYING
    if action == "NpcLogin":
        return Phase.PROGRAM
    if action == "Logout":
        return Phase.GREETED
    return phase


@dataclass(frozen=True)
class SessionConfig:
    grace_s: float = 30.0  # how long an avatar waits for its dropped connection to come back
    scrypt_n: int = 2**14
    rate: float = 30.0  # requests per second allowed per connection ...
    burst: int = 60  # ... with this much slack
    flood_strikes: int = 100  # rate-limited requests within a burst window before the connection is closed
    write_limit: int = 512 * 1024  # bytes queued for a client before it counts as too slow and is dropped
    trusted_proxies: tuple = ()  # networks whose X-Forwarded-For names the client (server/net/address.py)


class RateLimit:
    """A token bucket: `rate` requests a second with `burst` slack; `strikes` counts refusals (a flood)."""

    def __init__(self, rate: float, burst: int, now: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.last, self.strikes = float(burst), now, 0

    def allow(self, now: float) -> bool:
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.strikes = max(0, self.strikes - 1)
            return True
        self.strikes += 1
        return False
