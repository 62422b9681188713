"""Fixtures. Tests that touch the ledger need a real PostgreSQL: set TEST_DATABASE_URL (or
DATABASE_URL) to a database the tests may create a schema in. Each test session works in its
own throw-away schema, so pointing it at a database with data in it is harmless."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from support import SECRET, GitHub

from points.app import create_app
from points.config import Settings
from points.migrate import migrate


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail(
            "these tests need PostgreSQL: set TEST_DATABASE_URL (or DATABASE_URL), e.g. "
            "postgresql://loyalty@127.0.0.1:5432/loyalty_test",
            pytrace=False,
        )
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"cannot connect to the test database {url!r}: {exc}", pytrace=False)
    return url


@pytest.fixture(scope="session")
def schema_url(database_url: str) -> Iterator[str]:
    """A conninfo whose search_path is a fresh schema, migrated; dropped at the end."""
    schema = f"points_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_conninfo(database_url, options=f"-c search_path={schema}")
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def clean_db(schema_url: str) -> str:
    with psycopg.connect(schema_url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE debits, ledger_entries, deliveries, contributors RESTART IDENTITY CASCADE"
        )
    return schema_url


@pytest.fixture
def app(clean_db: str):
    app = create_app(Settings(database_url=clean_db, webhook_secret=SECRET, db_pool_size=25))
    app.config["TESTING"] = True
    yield app
    app.extensions["points.db"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def github(client) -> GitHub:
    return GitHub(client)
