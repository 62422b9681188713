"""The ledger: booking credits and debits, reading balances.

Every function takes a connection that is inside a transaction (see :mod:`points.db`); the
caller commits. Uniqueness and the non-negative balance are enforced by the schema, and the
code below is written so that concurrent requests cannot get around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from points.webhooks import Credit


class UnknownContributor(LookupError):
    pass


class InsufficientBalance(Exception):
    def __init__(self, login: str, balance: int, required: int) -> None:
        super().__init__(f"{login} has {balance} points, {required} needed")
        self.login = login
        self.balance = balance
        self.required = required


class IdempotencyKeyReused(Exception):
    """The key was already used for a different debit."""


@dataclass(frozen=True)
class Debit:
    id: int
    login: str
    amount: int
    reason: str
    balance: int
    idempotency_key: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "login": self.login,
            "amount": self.amount,
            "reason": self.reason,
            "balance": self.balance,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at.isoformat(),
        }


def record_delivery(conn: psycopg.Connection, delivery_id: str, event: str) -> bool:
    """Record a webhook delivery; False when it was recorded before (a replay)."""
    row = conn.execute(
        "INSERT INTO deliveries (delivery_id, event) VALUES (%s, %s) "
        "ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id",
        (delivery_id, event),
    ).fetchone()
    return row is not None


def _contributor_id(conn: psycopg.Connection, login: str) -> int:
    row = conn.execute(
        "INSERT INTO contributors (login) VALUES (%s) "
        "ON CONFLICT ((lower(login))) DO NOTHING RETURNING id",
        (login,),
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT id FROM contributors WHERE lower(login) = lower(%s)", (login,)
        ).fetchone()
    return row["id"]


def credit(conn: psycopg.Connection, credit: Credit, delivery_id: str | None) -> int | None:
    """Book ``credit``; return the new balance, or None when its source was booked before."""
    booked = conn.execute(
        "SELECT 1 FROM ledger_entries WHERE source_key = %s", (credit.source_key,)
    ).fetchone()
    if booked is not None:
        return None  # without creating an empty account for whoever sent the replay
    contributor_id = _contributor_id(conn, credit.login)
    # Concurrent deliveries of the same source meet at the unique key: one of them books it.
    entry = conn.execute(
        "INSERT INTO ledger_entries "
        "(contributor_id, amount, kind, source_key, reason, url, delivery_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (source_key) DO NOTHING RETURNING id",
        (
            contributor_id,
            credit.amount,
            credit.kind,
            credit.source_key,
            credit.reason,
            credit.url,
            delivery_id,
        ),
    ).fetchone()
    if entry is None:
        return None
    row = conn.execute(
        "UPDATE contributors SET balance = balance + %s WHERE id = %s RETURNING balance",
        (credit.amount, contributor_id),
    ).fetchone()
    return row["balance"]


def debit(
    conn: psycopg.Connection, login: str, amount: int, reason: str, key: str
) -> tuple[Debit, bool]:
    """Take ``amount`` points from ``login`` once per idempotency ``key``.

    Returns the debit and whether it is a replay of an earlier one with the same key. Raises
    :class:`UnknownContributor`, :class:`InsufficientBalance` or
    :class:`IdempotencyKeyReused`; the caller must then roll back.
    """
    # Requests with the same key queue here, so the second one finds the first one's debit.
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"debit:{key}",))
    existing = _find_debit(conn, key)
    if existing is not None:
        if existing.login.lower() != login.lower() or (existing.amount, existing.reason) != (
            amount,
            reason,
        ):
            raise IdempotencyKeyReused(
                f"idempotency key {key!r} was used for a different debit "
                f"({existing.amount} points from {existing.login} for {existing.reason!r})"
            )
        return existing, True
    # One conditional UPDATE: the row lock serialises concurrent debits of one contributor
    # and each re-checks the balance it finds after the one before it committed.
    row = conn.execute(
        "UPDATE contributors SET balance = balance - %s "
        "WHERE lower(login) = lower(%s) AND balance >= %s "
        "RETURNING id, login, balance",
        (amount, login, amount),
    ).fetchone()
    if row is None:
        found = conn.execute(
            "SELECT login, balance FROM contributors WHERE lower(login) = lower(%s)", (login,)
        ).fetchone()
        if found is None:
            raise UnknownContributor(login)
        raise InsufficientBalance(found["login"], found["balance"], amount)
    entry = conn.execute(
        "INSERT INTO ledger_entries (contributor_id, amount, kind, source_key, reason) "
        "VALUES (%s, %s, 'debit', %s, %s) RETURNING id, created_at",
        (row["id"], -amount, f"debit:{key}", reason),
    ).fetchone()
    conn.execute(
        "INSERT INTO debits "
        "(idempotency_key, contributor_id, amount, reason, ledger_entry_id, balance_after, "
        "created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (key, row["id"], amount, reason, entry["id"], row["balance"], entry["created_at"]),
    )
    return (
        Debit(
            id=entry["id"],
            login=row["login"],
            amount=amount,
            reason=reason,
            balance=row["balance"],
            idempotency_key=key,
            created_at=entry["created_at"],
        ),
        False,
    )


def _find_debit(conn: psycopg.Connection, key: str) -> Debit | None:
    row = conn.execute(
        "SELECT d.ledger_entry_id, c.login, d.amount, d.reason, d.balance_after, d.created_at "
        "FROM debits d JOIN contributors c ON c.id = d.contributor_id "
        "WHERE d.idempotency_key = %s",
        (key,),
    ).fetchone()
    if row is None:
        return None
    return Debit(
        id=row["ledger_entry_id"],
        login=row["login"],
        amount=row["amount"],
        reason=row["reason"],
        balance=row["balance_after"],
        idempotency_key=key,
        created_at=row["created_at"],
    )


def contributor(conn: psycopg.Connection, login: str, history_limit: int) -> dict[str, Any] | None:
    """The contributor's balance and most recent ledger entries (newest first), or None."""
    # One snapshot for both queries, so the history always adds up to the balance shown.
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    row = conn.execute(
        "SELECT id, login, balance, created_at FROM contributors WHERE lower(login) = lower(%s)",
        (login,),
    ).fetchone()
    if row is None:
        return None
    totals = conn.execute(
        "SELECT coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS earned, "
        "coalesce(-sum(amount) FILTER (WHERE amount < 0), 0) AS spent, count(*) AS entries "
        "FROM ledger_entries WHERE contributor_id = %s",
        (row["id"],),
    ).fetchone()
    entries = conn.execute(
        "SELECT id, amount, kind, reason, url, delivery_id, created_at FROM ledger_entries "
        "WHERE contributor_id = %s ORDER BY id DESC LIMIT %s",
        (row["id"], history_limit),
    ).fetchall()
    return {
        "login": row["login"],
        "balance": row["balance"],
        "earned": int(totals["earned"]),
        "spent": int(totals["spent"]),
        "since": row["created_at"].isoformat(),
        "history": [
            {
                "id": e["id"],
                "amount": e["amount"],
                "kind": e["kind"],
                "reason": e["reason"],
                "url": e["url"],
                "delivery": e["delivery_id"],
                "at": e["created_at"].isoformat(),
            }
            for e in entries
        ],
        "history_total": totals["entries"],
    }


def leaderboard(conn: psycopg.Connection, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT login, balance FROM contributors ORDER BY balance DESC, lower(login) LIMIT %s",
        (limit,),
    ).fetchall()
    return [{"login": r["login"], "balance": r["balance"]} for r in rows]
