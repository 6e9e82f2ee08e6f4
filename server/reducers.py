"""Which reducer rebuilds which logged actor: the one table `serve` and `replay` share.

Keyed by actor id (an exact id, or a prefix ending in ':'). The log module takes `state_for` as its factory and
imports no actor; a test checks that every logged actor a running world has is covered here, with the reducer
the actor itself declares.
"""

from __future__ import annotations

from npcs.actors.fed_state import FedState
from npcs.actors.oracle import OracleState
from npcs.actors.trader import TraderState
from server.core.state import ActorState
from server.economy.accounts import AccountsState
from server.economy.ledger import TokenState
from server.economy.market_state import MarketState
from server.world.room_state import RoomState

REDUCERS: dict[str, type[ActorState]] = {
    "accounts": AccountsState,
    "room:": RoomState,
    "token:": TokenState,
    "fed": FedState,
    "oracle:": OracleState,
    "market": MarketState,
    "trader:": TraderState,
}


def state_for(actor_id: str) -> ActorState:
    """A fresh state object for an actor id."""
    reducer = REDUCERS.get(actor_id)
    if reducer is None and ":" in actor_id:
        reducer = REDUCERS.get(actor_id.split(":", 1)[0] + ":")
    if reducer is None:
        raise KeyError(f"no logged state for actor {actor_id!r}")
    return reducer()
