"""Ownership of logged actors across processes: a lease per actor in the database, with an epoch that fences.

A process that serves a logged actor (a room, a ledger, the Fed) holds its lease: `owner` (the process), `epoch`
(raised by one at every change of owner) and `expires_ms`. It renews the lease well before it expires; another
process may take the actor over only once it has expired, and gets the next epoch. Every append to the actor's log
checks, in the same transaction, that the lease still names this owner and epoch (`check`): a process that was
paused or cut off past its lease ("a zombie") and wakes up can never write again after someone took over — its
append is refused with `StaleOwner` and rolled back, so the log cannot fork.

The database is the authority (a row lock on PostgreSQL, SQLite's single writer); times are passed in, so the
rules can be tested at any clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Callable

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from server.core.db import Database, Lease, WriteRefused

log = logging.getLogger("llama_land.lease")


def process_id() -> str:
    """This process, as leases and worker announcements name it: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class StaleOwner(WriteRefused):
    """An append by a process that no longer owns the actor: refused, nothing written."""


@dataclass(frozen=True)
class Held:
    actor: str
    owner: str
    epoch: int
    expires_ms: int


def check(session: Session, actor: str, owner: str, epoch: int) -> None:
    """Inside a write transaction: refuse unless `owner` still holds `actor` at `epoch` (and lock the row against a
    takeover until the transaction ends)."""
    row = session.exec(select(Lease).where(Lease.actor == actor).with_for_update(read=True)).first()
    if row is None or row.owner != owner or row.epoch != epoch:
        held = "nobody" if row is None else f"{row.owner} at epoch {row.epoch}"
        raise StaleOwner(f"{actor}: {owner} (epoch {epoch}) no longer owns it; {held} does")


class Leases:
    """One process's leases. Blocking calls (they wait for the database): run them off the event loop."""

    def __init__(self, db: Database, owner: str, ttl_ms: int = 5000):
        self.db, self.owner, self.ttl_ms = db, owner, ttl_ms

    def acquire(self, actor: str, now_ms: int) -> Held | None:
        """Take the lease if it is free, expired or already ours (then renewed at the same epoch); None if another
        process holds it."""
        with self.db.session() as session:
            row = session.exec(select(Lease).where(Lease.actor == actor).with_for_update()).first()
            if row is None:
                row = Lease(actor=actor, owner=self.owner, epoch=1, expires_ms=now_ms + self.ttl_ms)
                session.add(row)
            elif row.owner == self.owner:
                row.expires_ms = now_ms + self.ttl_ms
            elif row.expires_ms <= now_ms:
                row.owner, row.epoch, row.expires_ms = self.owner, row.epoch + 1, now_ms + self.ttl_ms
            else:
                return None
            held = Held(actor, row.owner, row.epoch, row.expires_ms)
            try:
                session.commit()
            except IntegrityError:  # another process inserted the first lease at the same moment
                return None
            return held

    def renew(self, held: Held, now_ms: int) -> Held | None:
        """Extend a lease still held at its epoch; None if it was lost (expired and taken over)."""
        with self.db.session() as session:
            row = session.exec(select(Lease).where(Lease.actor == held.actor).with_for_update()).first()
            if row is None or row.owner != self.owner or row.epoch != held.epoch:
                return None
            row.expires_ms = now_ms + self.ttl_ms
            renewed = Held(held.actor, self.owner, held.epoch, row.expires_ms)
            session.commit()
            return renewed

    def release(self, held: Held) -> None:
        """Let another process take over at once (a clean stop): the lease expires now, the epoch stays."""
        with self.db.session() as session:
            row = session.exec(select(Lease).where(Lease.actor == held.actor).with_for_update()).first()
            if row is not None and row.owner == self.owner and row.epoch == held.epoch:
                row.expires_ms = 0
                session.commit()

    def holder(self, actor: str) -> Held | None:
        with self.db.session() as session:
            row = session.get(Lease, actor)
            return None if row is None else Held(row.actor, row.owner, row.epoch, row.expires_ms)


class OwnershipRefused(Exception):
    """Another process serves an actor this one was asked to serve (and did not let go in time)."""


class Ownership:
    """The leases of every logged actor a process serves: claimed before their state is loaded (waiting for a
    previous owner's lease to run out), renewed every third of their time to live, released at a clean stop.
    `lost` is set the moment a renewal finds that another process took one over: the process must stop serving."""

    def __init__(self, db: Database, owner: str, ttl_ms: int = 5000, standby: bool = False):
        self.leases = Leases(db, owner, ttl_ms)
        self.owner, self.ttl_ms, self.standby = owner, ttl_ms, standby
        self.held: dict[str, Held] = {}
        self.lost = asyncio.Event()
        self.why_lost = ""
        self._renewing: asyncio.Task | None = None

    async def claim(self, actors: list[str], now: Callable[[], int], wait: bool = True) -> None:
        """Hold every one of `actors`, or none: a standby waits as long as it takes, anyone else one lease time
        (a restart after a crash finds the dead process's leases still running)."""
        deadline = now() + self.ttl_ms + 1000
        while True:
            blocker = await asyncio.to_thread(self._claim_all, actors, now())
            if blocker is None:
                return
            if not wait or (not self.standby and now() > deadline):
                raise OwnershipRefused(f"{blocker.actor} is served by {blocker.owner} (epoch {blocker.epoch}) "
                                       f"until {blocker.expires_ms}; start with --standby to wait and take over")
            log.warning("waiting for %s: served by %s (epoch %d)", blocker.actor, blocker.owner, blocker.epoch)
            await asyncio.sleep(min(1.0, self.ttl_ms / 2000))

    def _claim_all(self, actors: list[str], now_ms: int) -> Held | None:
        got = []
        for actor in actors:
            held = self.leases.acquire(actor, now_ms)
            if held is None:
                for mine in got:  # all or none: two waiting processes must not split the world between them
                    if mine.actor not in self.held:
                        self.leases.release(mine)
                return self.leases.holder(actor) or Held(actor, "?", 0, 0)
            got.append(held)
        self.held.update({h.actor: h for h in got})
        return None

    def start_renewing(self, now: Callable[[], int]) -> None:
        self._renewing = asyncio.get_running_loop().create_task(self._renew(now), name="lease-renewal")

    async def _renew(self, now: Callable[[], int]) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            for actor, held in list(self.held.items()):
                renewed = await asyncio.to_thread(self.leases.renew, held, now())
                if renewed is None:
                    self.why_lost = f"{actor}: another process took it over (this process held epoch {held.epoch})"
                    log.error("lost the lease of %s; this process stops serving", actor)
                    self.held.clear()
                    self.lost.set()
                    return
                self.held[actor] = renewed

    async def release(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            await asyncio.gather(self._renewing, return_exceptions=True)
        for held in list(self.held.values()):
            await asyncio.to_thread(self.leases.release, held)
        self.held.clear()
