"""The connection pool, opened lazily so that it is created in each gunicorn worker after the
fork, never shared across processes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout


class DatabaseUnavailable(RuntimeError):
    """No connection could be had within the configured timeout."""


class Database:
    def __init__(self, conninfo: str, *, max_size: int = 4, timeout: float = 5.0) -> None:
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            open=False,
            name="points",
            kwargs={
                "connect_timeout": max(1, int(timeout)),
                "row_factory": dict_row,
                "application_name": "points",
            },
            # A connection broken while idle (database restarted) is replaced, not handed out.
            check=ConnectionPool.check_connection,
        )
        self._timeout = timeout
        self._lock = threading.Lock()
        self._opened = False

    def _open(self) -> None:
        if not self._opened:
            with self._lock:
                if not self._opened:
                    self._pool.open(wait=False)
                    self._opened = True

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """A pooled connection inside a transaction: committed when the block ends normally,
        rolled back when it raises."""
        self._open()
        try:
            with self._pool.connection(timeout=timeout or self._timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    def ping(self, timeout: float) -> None:
        """Raise unless the database answers within ``timeout`` seconds."""
        with self.connection(timeout=timeout) as conn:
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true)", (str(int(timeout * 1000)),)
            )
            conn.execute("SELECT 1")

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False
