"""python -m points.migrate: idempotent, transactional, safe to run concurrently."""

import threading
import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from points import migrate as migrate_module
from points.migrate import Migration, MigrationError, load_migrations, main, migrate


@pytest.fixture
def empty_schema(database_url):
    schema = f"points_migrate_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield make_conninfo(database_url, options=f"-c search_path={schema}")
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def tables(url):
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() "
            "ORDER BY table_name"
        ).fetchall()
    return [r[0] for r in rows]


def test_shipped_migrations_are_found_in_order():
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert migrations[0].version == "0001" and "CREATE TABLE contributors" in migrations[0].sql


def test_applies_once_then_nothing(empty_schema):
    assert migrate(empty_schema) == [m.version for m in load_migrations()]
    assert tables(empty_schema) == [
        "contributors",
        "debits",
        "deliveries",
        "ledger_entries",
        "schema_migrations",
    ]
    assert migrate(empty_schema) == []
    with psycopg.connect(empty_schema) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(
            load_migrations()
        )


def test_new_migration_is_applied_after_the_old_ones(empty_schema):
    migrate(empty_schema)
    extra = Migration("9001", "extra", "CREATE TABLE extra (id int);")
    assert migrate(empty_schema, load_migrations() + [extra]) == ["9001"]
    assert "extra" in tables(empty_schema)


def test_failed_migration_leaves_nothing_behind(empty_schema):
    broken = Migration("0001", "broken", "CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(MigrationError, match="0001_broken failed"):
        migrate(empty_schema, [broken])
    assert tables(empty_schema) == ["schema_migrations"]
    with psycopg.connect(empty_schema) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 0


def test_edited_migration_is_refused(empty_schema):
    migrate(empty_schema, [Migration("0001", "one", "CREATE TABLE one (id int);")])
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(empty_schema, [Migration("0001", "one", "CREATE TABLE one (id bigint);")])


def test_concurrent_runners_apply_once(empty_schema):
    results, errors = [], []
    barrier = threading.Barrier(4)

    def run():
        barrier.wait()
        try:
            results.append(migrate(empty_schema))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results, key=len) == [[], [], [], [m.version for m in load_migrations()]]


def test_main_migrates_and_reports_status(empty_schema, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", empty_schema)
    assert main([]) == 0
    assert main([]) == 0
    assert main(["--status"]) == 0
    assert "0001_ledger: applied" in capsys.readouterr().out


def test_main_exits_2_when_the_database_is_unreachable(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://loyalty@127.0.0.1:1/loyalty")
    monkeypatch.setattr(migrate_module.time, "sleep", lambda s: None)
    assert main(["--wait", "0"]) == 2
