"""The message log: a per-actor, hash-chained, append-only record of everything that matters.

An actor appends a message and awaits it *before* its effects are visible, so whatever a player saw is on disk.
Each entry gets the next slot of its actor and hash = sha256(prev_hash ‖ packb([actor, slot, body])). Loading
an actor checks the chain from its latest snapshot; `replay` checks it from the first entry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import msgpack
from sqlmodel import Session, select

from server.core.db import Database, LogRecord, Snapshot
from server.core.lease import check
from server.core.state import ActorState

GENESIS = "0" * 64
# A fresh state object for an actor id (the composition root's table of reducers by id prefix).
StateFactory = Callable[[str], ActorState]
SNAPSHOT_EVERY = 500


class LogCorrupt(Exception):
    pass


def chain_hash(prev: str, actor: str, slot: int, body: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + msgpack.packb([actor, slot, body], use_bin_type=True)).hexdigest()


@dataclass
class Head:
    slot: int = 0
    hash: str = GENESIS


@dataclass
class Loaded:
    state: ActorState
    head: Head
    replayed: int


def _verify(actor: str, record: LogRecord, head: Head) -> None:
    if record.slot != head.slot + 1:
        raise LogCorrupt(f"{actor}: slot {record.slot} follows {head.slot}")
    expected = chain_hash(head.hash, actor, record.slot, record.body)
    if record.prev_hash != head.hash or record.hash != expected:
        raise LogCorrupt(f"{actor}: hash chain broken at slot {record.slot}")


def load_actor(session: Session, actor: str, state_for: StateFactory, use_snapshot: bool = True) -> Loaded:
    """Rebuild an actor's state: latest snapshot (optional) plus every later entry, checking the chain."""
    state = state_for(actor)
    head = Head()
    snap = session.get(Snapshot, actor) if use_snapshot else None
    if snap is not None:
        state = type(state).from_data(msgpack.unpackb(snap.state, raw=False))
        if state.digest() != snap.state_digest:
            raise LogCorrupt(f"{actor}: snapshot at slot {snap.slot} does not match its digest")
        head = Head(snap.slot, snap.hash)
    replayed = 0
    query = select(LogRecord).where(LogRecord.actor == actor, LogRecord.slot > head.slot).order_by(LogRecord.slot)
    for record in session.exec(query):
        _verify(actor, record, head)
        state.apply(msgpack.unpackb(record.body, raw=False))
        head = Head(record.slot, record.hash)
        replayed += 1
    return Loaded(state, head, replayed)


def logged_actors(session: Session) -> list[str]:
    return sorted(session.exec(select(LogRecord.actor).distinct()).all())


@dataclass
class ReplayResult:
    actor: str
    slot: int
    digest: str
    snapshot_ok: bool | None  # None: no snapshot to compare


def replay_all(db: Database, state_for: StateFactory) -> list[ReplayResult]:
    """Rebuild every actor from its first entry; also check each snapshot against the replay at its slot."""
    results = []
    with db.session() as session:
        for actor in logged_actors(session):
            snap = session.get(Snapshot, actor)
            state, head = state_for(actor), Head()
            snapshot_ok = None
            query = select(LogRecord).where(LogRecord.actor == actor).order_by(LogRecord.slot)
            for record in session.exec(query):
                _verify(actor, record, head)
                state.apply(msgpack.unpackb(record.body, raw=False))
                head = Head(record.slot, record.hash)
                if snap is not None and record.slot == snap.slot:
                    snapshot_ok = state.digest() == snap.state_digest and head.hash == snap.hash
            results.append(ReplayResult(actor, head.slot, state.digest(), snapshot_ok))
    return results


class MessageLog:
    """Appends for live actors. One writer per actor id (its own handler), so heads need no lock."""

    def __init__(self, db: Database, state_for: StateFactory):
        self.db = db
        self.state_for = state_for
        self.heads: dict[str, Head] = {}
        self.appended = 0
        self.fences: dict[str, tuple[str, int]] = {}  # actor -> (owner, epoch) its appends must still hold

    def fence(self, actor: str, owner: str, epoch: int) -> None:
        """From now on an append to actor's log commits only while `owner` holds its lease at `epoch`."""
        self.fences[actor] = (owner, epoch)

    def load(self, actor: str) -> ActorState:
        with self.db.session() as session:
            loaded = load_actor(session, actor, self.state_for)
        self.heads[actor] = loaded.head
        return loaded.state

    async def append(self, actor: str, msg: dict[str, Any], rows: Iterable[Any] = ()) -> Head:
        """Durably append msg (and any projection rows, in the same transaction); returns the new head."""
        prev = self.heads.get(actor, Head())
        body = msgpack.packb(msg, use_bin_type=True)
        head = Head(prev.slot + 1, chain_hash(prev.hash, actor, prev.slot + 1, body))
        record = LogRecord(
            actor=actor, slot=head.slot, t_ms=msg["T"], action=msg["Action"], body=body,
            prev_hash=prev.hash, hash=head.hash,
        )
        extra = list(rows)
        fence = self.fences.get(actor)

        def write(session: Session) -> None:
            if fence is not None:  # same transaction: a zombie's append is refused and rolled back
                check(session, actor, *fence)
            session.add(record)
            session.add_all(extra)

        self.heads[actor] = head
        try:
            await self.db.submit(write)
        except BaseException:
            # Not durable, so it never happened: the next append reuses this slot.
            self.heads[actor] = prev
            raise
        self.appended += 1
        return head

    def snapshot_due(self, actor: str) -> bool:
        return self.heads.get(actor, Head()).slot % SNAPSHOT_EVERY == 0

    def snapshot(self, actor: str, state: ActorState) -> None:
        head = self.heads.get(actor, Head())
        if head.slot == 0:
            return
        snap = Snapshot(
            actor=actor, slot=head.slot, hash=head.hash,
            state=msgpack.packb(state.to_data(), use_bin_type=True), state_digest=state.digest(),
        )
        fence = self.fences.get(actor)

        def write(session: Session) -> None:
            if fence is not None:
                check(session, actor, *fence)
            session.merge(snap)
        self.db.submit_nowait(write)
