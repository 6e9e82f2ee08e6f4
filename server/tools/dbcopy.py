"""`llama-land db copy FROM TO`: move a world's database to another engine (SQLite to PostgreSQL, or back).

Every table is copied row for row — accounts, the hash-chained log and its snapshots, chat, positions, NPC memory,
inference receipts — into an empty target in one transaction, so a copy is whole or not at all. Then both are
replayed and their state digests compared: the copy is the same world, and `llama-land replay` verifies it.
Stop the server first: a copy of a database being written is a copy of some moment of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, insert, select, text
from sqlmodel import SQLModel

from server.core.db import Database, LogRecord
from server.core.log import StateFactory, replay_all

BATCH = 1000


class CopyRefused(Exception):
    pass


@dataclass
class Copied:
    rows: dict[str, int]  # table -> rows copied
    actors: int
    entries: int


def copy_database(source_url: str, target_url: str, state_for: StateFactory) -> Copied:
    source, target = Database(source_url), Database(target_url)
    try:
        with target.session() as session:
            if session.execute(select(func.count()).select_from(LogRecord)).scalar_one():
                raise CopyRefused(f"{target_url} already holds a world's log: copy into an empty database")
        rows: dict[str, int] = {}
        with source.engine.connect() as src, target.engine.begin() as dst:
            for table in SQLModel.metadata.sorted_tables:
                count = 0
                result = src.execute(select(table).order_by(*table.primary_key.columns))
                while batch := [dict(r) for r in result.mappings().fetchmany(BATCH)]:
                    dst.execute(insert(table), batch)
                    count += len(batch)
                rows[table.name] = count
            if target.engine.dialect.name == "postgresql":  # rows came with their ids: move the counters past them
                for table in SQLModel.metadata.sorted_tables:
                    column = table.columns.get("id")
                    if column is not None and column.primary_key and column.type.python_type is int:
                        dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                         f"GREATEST((SELECT MAX(id) FROM {table.name}), 1))"))
        before = {r.actor: (r.slot, r.digest) for r in replay_all(source, state_for)}
        after = {r.actor: (r.slot, r.digest) for r in replay_all(target, state_for)}
        if before != after:
            raise CopyRefused("the copy does not replay to the same state as the source (nothing else was changed)")
        return Copied(rows, len(after), sum(slot for slot, _ in after.values()))
    finally:
        source.engine.dispose()
        target.engine.dispose()
