"""Apply the SQL migrations in ``points/migrations`` to ``DATABASE_URL``.

Run it once before the application starts, as a one-off container (it is not part of the app's
start command)::

    python -m points.migrate            # apply what is pending, then exit
    python -m points.migrate --status   # list applied and pending migrations

It is idempotent: applied versions are recorded in ``schema_migrations`` and skipped; each
migration runs in its own transaction together with its record, so a failure leaves nothing
half-applied. A session-level advisory lock lets several runners start at once safely. A
migration that was edited after it was applied is an error (its checksum no longer matches).
Exit status: 0 on success, 1 on a failed migration or a changed one, 2 when the database cannot
be reached within ``--wait`` seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from importlib import resources

import psycopg

log = logging.getLogger("points.migrate")

# Any constant shared by every runner of this schema; pg_advisory_lock takes a bigint.
LOCK_ID = 0x6C6F79616C7479  # "loyalty"
FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    found = []
    for entry in resources.files("points").joinpath("migrations").iterdir():
        match = FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(match[1], match[2], entry.read_text(encoding="utf-8")))
        elif entry.name.endswith(".sql"):
            raise MigrationError(f"{entry.name}: migration files are named NNNN_name.sql")
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {versions}")
    return found


def _ensure_table(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    text        PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )


def _applied(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {version: checksum for version, checksum in rows}


def migrate(conninfo: str, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations; return the versions applied by this call."""
    migrations = load_migrations() if migrations is None else migrations
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        try:
            _ensure_table(conn)
            applied = _applied(conn)
            for migration in migrations:
                known = applied.get(migration.version)
                if known is not None:
                    if known != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version}_{migration.name} was changed after it "
                            "was applied; add a new migration instead of editing an applied one"
                        )
                    continue
                log.info("applying %s_%s", migration.version, migration.name)
                try:
                    with conn.transaction():
                        conn.execute(migration.sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) "
                            "VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {migration.version}_{migration.name} failed: {exc}"
                    ) from exc
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
    return applied_now


def status(conninfo: str) -> list[tuple[str, str, bool]]:
    """(version, name, applied) for every shipped migration."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        _ensure_table(conn)
        applied = _applied(conn)
    return [(m.version, m.name, m.version in applied) for m in load_migrations()]


def wait_for_database(conninfo: str, seconds: float) -> None:
    """Return once the database accepts connections; raise after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(conninfo, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() >= deadline:
                raise
            log.info("database not reachable yet (%s); retrying", str(exc).strip().splitlines()[0])
            time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m points.migrate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--status", action="store_true", help="list migrations and exit")
    parser.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the database to accept connections (default 30)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stdout,
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    conninfo = os.environ.get("DATABASE_URL", "postgresql://loyalty@db:5432/loyalty")
    try:
        wait_for_database(conninfo, args.wait)
    except psycopg.OperationalError as exc:
        log.error("database unreachable after %ss: %s", args.wait, exc)
        return 2
    try:
        if args.status:
            for version, name, applied in status(conninfo):
                print(f"{version}_{name}: {'applied' if applied else 'pending'}")
            return 0
        done = migrate(conninfo)
    except MigrationError as exc:
        log.error("%s", exc)
        return 1
    log.info("%s", f"applied {', '.join(done)}" if done else "schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
