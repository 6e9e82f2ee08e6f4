"""The hash-chained message log on a real SQLite file."""

import asyncio

import pytest
from sqlmodel import select

from server.core import log as logmod
from server.core.db import BadDatabaseURL, LogRecord, Snapshot, make_db_engine
from server.reducers import state_for
from server.core.log import GENESIS, LogCorrupt, MessageLog, chain_hash, load_actor, replay_all


def chat(i):
    return {"Action": "Chat", "Player": "alice", "Scope": "room", "Text": f"line {i}", "T": 1000 + i}


async def test_append_builds_a_chain_and_load_rebuilds_state(db):
    log = MessageLog(db, state_for)
    log.load("room:a")
    await log.append("room:a", {"Action": "Join", "Player": "alice", "X": 1, "Y": 1, "Via": "login", "T": 1})
    for i in range(5):
        await log.append("room:a", chat(i))
    with db.session() as s:
        records = s.exec(select(LogRecord).order_by(LogRecord.slot)).all()
        assert [r.slot for r in records] == list(range(1, 7))
        assert records[0].prev_hash == GENESIS
        for a, b in zip(records, records[1:]):
            assert b.prev_hash == a.hash
            assert b.hash == chain_hash(a.hash, "room:a", b.slot, b.body)
        loaded = load_actor(s, "room:a", state_for)
    assert loaded.state.members == {"alice": 1}
    assert [line[2] for line in loaded.state.history] == [f"line {i}" for i in range(5)]
    assert loaded.head.slot == 6


async def test_tampering_is_detected(db):
    log = MessageLog(db, state_for)
    for i in range(3):
        await log.append("room:a", chat(i))
    with db.session() as s:
        rec = s.exec(select(LogRecord).where(LogRecord.slot == 2)).one()
        rec.body = rec.body.replace(b"line 1", b"line X")
        s.add(rec)
        s.commit()
    with db.session() as s, pytest.raises(LogCorrupt, match="slot 2"):
        load_actor(s, "room:a", state_for)
    with pytest.raises(LogCorrupt):
        replay_all(db, state_for)


async def test_snapshot_plus_tail_equals_full_replay(db, monkeypatch):
    monkeypatch.setattr(logmod, "SNAPSHOT_EVERY", 4)
    log = MessageLog(db, state_for)
    state = log.load("room:a")
    for i in range(10):
        entry = chat(i)
        await log.append("room:a", entry)
        state.apply(entry)
        if log.snapshot_due("room:a"):
            log.snapshot("room:a", state)
    await asyncio.sleep(0.05)
    db.stop()
    db.start()
    with db.session() as s:
        snap = s.get(Snapshot, "room:a")
        assert snap.slot == 8
        from_snapshot = load_actor(s, "room:a", state_for)
        from_scratch = load_actor(s, "room:a", state_for, use_snapshot=False)
    assert from_snapshot.replayed == 2 and from_scratch.replayed == 10
    assert from_snapshot.state.digest() == from_scratch.state.digest() == state.digest()
    [result] = replay_all(db, state_for)
    assert result.snapshot_ok is True and result.digest == state.digest()


async def test_failed_write_does_not_advance_the_head(db):
    log = MessageLog(db, state_for)
    await log.append("room:a", chat(0))
    head_before = log.heads["room:a"]
    with db.session() as s:  # someone else took slot 2: our insert breaks the (actor, slot) constraint
        s.add(LogRecord(actor="room:a", slot=2, t_ms=0, action="Chat", body=b"", prev_hash="", hash=""))
        s.commit()
    with pytest.raises(Exception, match="(?i)unique"):  # SQLite says UNIQUE, PostgreSQL unique
        await log.append("room:a", chat(1))
    assert log.heads["room:a"] == head_before  # the failed entry never happened


def test_bad_database_urls_are_reported():
    with pytest.raises(BadDatabaseURL, match="cannot parse"):
        make_db_engine("::::")
    with pytest.raises(BadDatabaseURL, match="no driver"):
        make_db_engine("nosuchdb://x")
    with pytest.raises(BadDatabaseURL, match="cannot open"):
        make_db_engine("sqlite:////no/such/dir/x.db")
