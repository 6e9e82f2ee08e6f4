"""Persistence with sqlmodel: tables, engine set-up, and the writer thread.

All writes go through one `Database` writer thread that commits in groups: the event loop hands it a job and
awaits a future, so a slow disk never stalls a room, and many appends share one fsync. Two engines are supported
and tested: SQLite (the default; WAL mode with synchronous=NORMAL, which survives a killed process, not a power
cut) and PostgreSQL through psycopg 3 (`postgresql+psycopg://user:password@host/db`; a bare `postgresql://`
means the same).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any, Callable, Optional

from sqlalchemy import BigInteger, UniqueConstraint, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlmodel import Field, Session, SQLModel, create_engine

log = logging.getLogger("llama_land.db")

DEFAULT_URL = "sqlite:///llama-land.db"


class Account(SQLModel, table=True):
    name: str = Field(primary_key=True)
    pw_hash: str
    created_ms: int = Field(sa_type=BigInteger)  # ms since the epoch: 64 bits


class LogRecord(SQLModel, table=True):
    """One logged message of one actor. `hash` = sha256(prev_hash ‖ packb([actor, slot, body]))."""

    __table_args__ = (UniqueConstraint("actor", "slot"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    actor: str = Field(index=True)
    slot: int
    t_ms: int = Field(sa_type=BigInteger)  # ms since the epoch: 64 bits
    action: str
    body: bytes
    prev_hash: str
    hash: str


class Snapshot(SQLModel, table=True):
    """Actor state as of `slot`, so a restart replays only the tail of the log."""

    actor: str = Field(primary_key=True)
    slot: int
    hash: str  # chain hash of the entry at `slot`
    state: bytes
    state_digest: str


class Lease(SQLModel, table=True):
    """Which process owns a logged actor, at which epoch, until when (server/core/lease.py)."""

    actor: str = Field(primary_key=True)
    owner: str
    epoch: int = Field(sa_type=BigInteger)
    expires_ms: int = Field(sa_type=BigInteger)


class ChatLine(SQLModel, table=True):
    """Every chat line and whisper (a projection of the log, for history and operators)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    room: str = Field(index=True)
    scope: str  # room | near | whisper
    author: str
    to: Optional[str] = None
    text: str
    t_ms: int = Field(sa_type=BigInteger)  # ms since the epoch: 64 bits


class PositionCheckpoint(SQLModel, table=True):
    """Last known position of a player: soft state, checkpointed periodically and on leave, not logged per step."""

    name: str = Field(primary_key=True)
    room: str
    x: int
    y: int
    t_ms: int = Field(sa_type=BigInteger)  # ms since the epoch: 64 bits


_UPSERTS: dict[str, Any] = {}


def upsert_positions(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert or update checkpoints in bulk: one statement, compiled once, run as an executemany."""
    dialect = session.get_bind().dialect.name
    stmt = _UPSERTS.get(dialect)
    if stmt is None and dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        base = insert(PositionCheckpoint.__table__)
        stmt = _UPSERTS[dialect] = base.on_conflict_do_update(
            index_elements=["name"], set_={c: base.excluded[c] for c in ("room", "x", "y", "t_ms")}
        )
    if stmt is None:  # another database: the portable, slower way
        for row in rows:
            session.merge(PositionCheckpoint(**row))
        return
    session.connection().execute(stmt, rows)


class NpcFact(SQLModel, table=True):
    """What an NPC remembers about a player (a few short facts), used in its prompts: see npcs/actors/memory.py."""

    npc: str = Field(primary_key=True)
    player: str = Field(primary_key=True)
    facts: str  # JSON object: fact name -> short text
    t_ms: int = Field(sa_type=BigInteger)  # ms since the epoch: 64 bits


class InferenceReceipt(SQLModel, table=True):
    """Everything needed to re-run one inference and check it: see npcs/inference/receipts.py and `llama-land verify`."""

    id: str = Field(primary_key=True)  # the first 24 hex digits of `hash`
    created_ms: int = Field(sa_type=BigInteger)  # ms since the epoch: 64 bits
    requester: str = Field(index=True)
    request_id: str
    template_id: str
    persona: Optional[str] = None
    model_path: str
    model_sha256: str
    messages: str  # JSON
    prompt: str
    grammar: Optional[str] = None
    params: str  # JSON: max_tokens, temperature, top_k, top_p, seed, repeat_penalty
    prompt_tokens: bytes  # msgpack list of ids
    output_tokens: bytes
    output_text: str
    n_prompt: int
    n_output: int
    queue_ms: float
    ttft_ms: float
    gen_ms: float
    build: str  # JSON: llama-cpp-python version, CPU features
    hash: str
    scores: Optional[str] = None  # JSON, scored answers only: each choice's logit


class WriteRefused(Exception):
    """A write its own transaction refused on purpose (a fenced append by a process that lost its lease): logged
    as one line, not as a failure of the database."""


class BadDatabaseURL(Exception):
    pass


def make_db_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BadDatabaseURL(f"cannot parse {url!r}: {exc}") from None
    if parsed.drivername == "postgresql":  # SQLAlchemy's default driver for it differs between versions: ours is
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, which the project installs
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True  # a connection the server dropped (a restart) is replaced, not failed
        kwargs["connect_args"] = {"connect_timeout": 10}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        raise BadDatabaseURL(f"no driver for {parsed.drivername!r} ({exc})") from None
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    try:
        with engine.connect():
            pass
    except Exception as exc:  # the driver's own error text is the useful part
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())  # one line, whatever the driver says
        raise BadDatabaseURL(f"cannot open {parsed.render_as_string(hide_password=True)}: {reason}") from None
    return engine


def add_missing_columns(engine: Engine) -> None:
    """A database written by an older version lacks the nullable columns added since; add them (create_all makes
    missing tables only). Every such column is nullable, so old rows stay valid."""
    from sqlalchemy import inspect, text

    inspector = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and column.nullable:
                kind = column.type.compile(engine.dialect)
                with engine.begin() as conn:
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


Job = Callable[[Session], Any]


class Database:
    """Owns the engine and the writer thread. Reads at start-up may use `session()` directly."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_db_engine(url)
        SQLModel.metadata.create_all(self.engine)
        add_missing_columns(self.engine)
        self._jobs: queue.Queue[tuple[Job, asyncio.Future | None, asyncio.AbstractEventLoop | None] | None] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self.commits = 0
        self.jobs_done = 0

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._writer, name="db-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish every queued job, then stop the thread."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
        self.engine.dispose()  # close pooled connections: a database server counts them (the engine can reconnect)

    @property
    def queue_depth(self) -> int:
        return self._jobs.qsize()

    def submit(self, job: Job) -> asyncio.Future:
        """Queue a write; the future resolves (on the caller's loop) once it is committed."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._jobs.put((job, fut, loop))
        return fut

    def submit_nowait(self, job: Job) -> None:
        """Queue a write nobody waits for (checkpoints)."""
        self._jobs.put((job, None, None))

    def _writer(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < 512:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._run_batch(batch)

    def _run_batch(self, batch: list) -> None:
        with self.session() as session:
            try:
                results = [job(session) for job, _, _ in batch]
                session.commit()
                self.commits += 1
            except Exception:
                session.rollback()
                results = None
        if results is None:
            # One job broke the group: run them one by one so only the bad one fails.
            for item in batch:
                self._run_batch_one(item)
            return
        self.jobs_done += len(batch)
        for (_, fut, loop), result in zip(batch, results):
            _resolve(fut, loop, result, None)

    def _run_batch_one(self, item) -> None:
        job, fut, loop = item
        with self.session() as session:
            try:
                result = job(session)
                session.commit()
                self.commits += 1
                self.jobs_done += 1
                _resolve(fut, loop, result, None)
            except WriteRefused as exc:
                session.rollback()
                log.warning("write refused: %s", exc)
                _resolve(fut, loop, None, exc)
            except Exception as exc:
                session.rollback()
                log.exception("database write failed")
                _resolve(fut, loop, None, exc)


def _resolve(fut, loop, result, exc) -> None:
    if fut is None:
        return

    def settle() -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # loop already closed: nobody is waiting any more
        pass
