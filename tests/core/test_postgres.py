"""PostgreSQL as a first-class store: the URL forms, the one-line errors, and a server's whole state on it (the
rest of the database tests run on it too: every test that takes `db_url` runs on SQLite and on PostgreSQL)."""

import pytest
from sqlmodel import select

from server.core.db import BadDatabaseURL, Database, make_db_engine

from conftest import run_cli

UNREACHABLE = "postgresql+psycopg://llama:secret@127.0.0.1:1/world"


def test_an_unreachable_database_is_one_line_naming_the_url_without_its_password():
    with pytest.raises(BadDatabaseURL) as exc:
        make_db_engine(UNREACHABLE)
    message = str(exc.value)
    assert message.startswith("cannot open postgresql+psycopg://llama:***@127.0.0.1:1/world: ")
    assert "\n" not in message and "secret" not in message
    result = run_cli("serve", "--db", UNREACHABLE, "--port", "0", "--no-inference")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "127.0.0.1:1/world" in lines[0], result.stderr


def test_a_bare_postgresql_url_means_psycopg(postgres):
    url = postgres.new_database().replace("postgresql+psycopg://", "postgresql://")
    db = Database(url)
    assert db.engine.url.drivername == "postgresql+psycopg"
    db.engine.dispose()


def test_timestamps_are_64_bit_on_postgresql(postgres):
    from server.core.db import ChatLine

    db = Database(postgres.new_database())
    with db.session() as session:
        session.add(ChatLine(room="plaza", scope="room", author="alice", text="hi", t_ms=1_795_335_666_686))
        session.commit()
        assert session.exec(select(ChatLine)).one().t_ms == 1_795_335_666_686
    db.engine.dispose()


def test_db_copy_moves_an_old_sqlite_world_to_postgresql_and_replay_verifies(tmp_path, postgres):
    """The pre-change fixture world (tests/fixtures): copied, then replayed on PostgreSQL to the same digests."""
    import json
    import shutil

    from conftest import ROOT

    source = tmp_path / "old.db"
    shutil.copy(ROOT / "tests" / "fixtures" / "before-architecture.db", source)
    target = postgres.new_database()
    done = run_cli("db", "copy", f"sqlite:///{source}", target)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the copy replays to the same state: 10 actors, 48 log entries" in done.stdout
    replayed = run_cli("replay", "--db", target, "--json")
    assert replayed.returncode == 0
    digests = json.loads(replayed.stdout)
    assert digests == json.loads((ROOT / "tests" / "fixtures" / "before-architecture.json").read_text())
    again = run_cli("db", "copy", f"sqlite:///{source}", target)  # never into a database that holds a world
    assert again.returncode == 2 and "already holds a world's log" in again.stderr
