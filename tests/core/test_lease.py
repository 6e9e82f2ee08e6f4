"""Ownership leases with fencing, on SQLite and a real PostgreSQL: one owner at a time, a takeover only after
expiry and at the next epoch, and a zombie's append refused in its own transaction, so the log never forks."""

import pytest

from server.core.lease import Leases, StaleOwner
from server.core.log import MessageLog, replay_all
from server.reducers import state_for


def chat(i: int) -> dict:
    return {"Action": "Chat", "Player": "a", "Scope": "room", "Text": f"line {i}", "T": i}


def test_one_owner_at_a_time_and_a_takeover_only_after_expiry(db):
    a, b = Leases(db, "host-a", ttl_ms=5000), Leases(db, "host-b", ttl_ms=5000)
    held = a.acquire("room:plaza", now_ms=1000)
    assert held.epoch == 1 and held.expires_ms == 6000
    assert b.acquire("room:plaza", now_ms=5999) is None  # still a's
    assert a.acquire("room:plaza", now_ms=3000).epoch == 1  # a's own: renewed, same epoch
    renewed = a.renew(held, now_ms=7000)
    assert renewed.expires_ms == 12000
    taken = b.acquire("room:plaza", now_ms=12000)  # expired: b takes it over at the next epoch
    assert (taken.owner, taken.epoch) == ("host-b", 2)
    assert a.renew(renewed, now_ms=12001) is None  # a learns it lost it
    b.release(taken)
    assert a.acquire("room:plaza", now_ms=12002).epoch == 3  # released: at once, and the epoch still rises


async def test_a_zombie_cannot_append_after_a_takeover_and_the_log_does_not_fork(db):
    a, b = Leases(db, "host-a", ttl_ms=1000), Leases(db, "host-b", ttl_ms=1000)
    log_a, log_b = MessageLog(db, state_for), MessageLog(db, state_for)
    held_a = a.acquire("room:plaza", now_ms=0)
    log_a.load("room:plaza")
    log_a.fence("room:plaza", "host-a", held_a.epoch)
    for i in range(3):
        await log_a.append("room:plaza", chat(i))
    # host-a pauses past its lease; host-b takes the room over from the log and goes on.
    held_b = b.acquire("room:plaza", now_ms=5000)
    assert held_b.epoch == 2
    log_b.load("room:plaza")
    log_b.fence("room:plaza", "host-b", held_b.epoch)
    await log_b.append("room:plaza", chat(10))
    with pytest.raises(StaleOwner, match="no longer owns it"):  # host-a wakes up: refused, nothing written
        await log_a.append("room:plaza", chat(4))
    assert log_a.heads["room:plaza"].slot == 3  # its head did not move either
    await log_b.append("room:plaza", chat(11))
    [room] = [r for r in replay_all(db, state_for) if r.actor == "room:plaza"]
    assert room.slot == 5  # 3 by a, 2 by b: one chain, no slot lost or doubled


async def test_an_unfenced_log_appends_as_before(db):
    log = MessageLog(db, state_for)
    log.load("room:hall")
    await log.append("room:hall", chat(1))
    assert log.heads["room:hall"].slot == 1
