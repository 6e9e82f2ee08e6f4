"""LoggedActor: an actor whose state is a reducer over its own hash-chained log.

`record(entry, rows)` is the one way such an actor changes: the entry (and any projection rows, in the same
transaction) is made durable first, then applied to the state, so whatever anyone is told next is already on
disk; every SNAPSHOT_EVERY entries the state is snapshotted so a restart replays little. Each subclass names
its reducer in `State`; the composition root maps actor-id prefixes to reducers for `serve` and `replay` alike.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterable

from server.core.actors import Actor, Message
from server.core.log import MessageLog
from server.core.state import ActorState


class LoggedActor(Actor):
    State: ClassVar[type[ActorState]]

    def __init__(self, actor_id: str, log: MessageLog):
        super().__init__(actor_id)
        self.log = log
        self.state = log.load(actor_id)
        if not isinstance(self.state, self.State):  # the registry and the actor disagree: replay would too
            raise TypeError(f"{actor_id}: the log's reducer is {type(self.state).__name__}, the actor's "
                            f"{self.State.__name__}")

    async def record(self, entry: Message, rows: Iterable[Any] = ()) -> None:
        """Log first, then change state."""
        await self.log.append(self.id, entry, rows)
        self.state.apply(entry)
        if self.log.snapshot_due(self.id):
            self.log.snapshot(self.id, self.state)
