"""POST /internal/contributors/<login>/debits: atomic, never below zero, idempotent."""

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from support import balance, debit, sha


@pytest.fixture
def alice(github, client):
    """alice with 20 points: enough for exactly 4 coffees at 5."""
    github.push(*[(sha(n), "alice") for n in range(20)])
    assert balance(client, "alice") == 20
    return "alice"


def test_debit(client, alice):
    response = debit(client, alice, 5, "key-1", reason="redeemed coffee")
    assert response.status_code == 201
    body = response.get_json()
    assert {k: body[k] for k in ("login", "amount", "reason", "balance", "idempotency_key")} == {
        "login": "alice",
        "amount": 5,
        "reason": "redeemed coffee",
        "balance": 15,
        "idempotency_key": "key-1",
    }
    assert isinstance(body["id"], int) and body["created_at"]
    assert "Idempotent-Replayed" not in response.headers
    assert balance(client, alice) == 15


def test_debit_down_to_exactly_zero(client, alice):
    assert debit(client, alice, 20, "all").status_code == 201
    assert balance(client, alice) == 0


def test_insufficient_balance_is_409_and_changes_nothing(client, alice, clean_db):
    response = debit(client, alice, 21, "too-much")
    assert response.status_code == 409
    assert response.get_json() == {
        "error": "insufficient_balance",
        "message": "alice has 20 points, 21 needed",
        "balance": 20,
        "required": 21,
    }
    assert balance(client, alice) == 20
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM debits").fetchone()[0] == 0


def test_key_of_a_refused_debit_can_be_retried(client, alice, github):
    assert debit(client, alice, 25, "retry-me").status_code == 409
    github.push(*[(sha(100 + n), "alice") for n in range(5)])
    assert debit(client, alice, 25, "retry-me").status_code == 201
    assert balance(client, alice) == 0


def test_unknown_contributor_is_404(client):
    response = debit(client, "nobody", 1, "k")
    assert response.status_code == 404
    assert response.get_json()["error"] == "unknown_contributor"


def test_same_key_same_result_debited_once(client, alice):
    first = debit(client, alice, 5, "key-1")
    second = debit(client, alice, 5, "key-1")
    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert balance(client, alice) == 15
    # A later debit does not change what the first key answers.
    debit(client, alice, 5, "key-2")
    assert debit(client, alice, 5, "key-1").get_json()["balance"] == 15
    assert balance(client, alice) == 10


def test_key_reused_for_another_debit_is_422(client, alice):
    debit(client, alice, 5, "key-1")
    response = debit(client, alice, 6, "key-1")
    assert response.status_code == 422
    assert response.get_json()["error"] == "idempotency_key_reused"
    assert balance(client, alice) == 15


def test_missing_idempotency_key(client, alice):
    response = client.post(
        f"/internal/contributors/{alice}/debits", json={"amount": 1, "reason": "x"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "missing_idempotency_key"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"amount": 0, "reason": "x"}, "invalid_amount"),
        ({"amount": -5, "reason": "x"}, "invalid_amount"),
        ({"amount": "5", "reason": "x"}, "invalid_amount"),
        ({"amount": 1.5, "reason": "x"}, "invalid_amount"),
        ({"amount": True, "reason": "x"}, "invalid_amount"),
        ({"amount": 10**7, "reason": "x"}, "invalid_amount"),
        ({"reason": "x"}, "invalid_amount"),
        ({"amount": 1}, "invalid_reason"),
        ({"amount": 1, "reason": "  "}, "invalid_reason"),
        ({"amount": 1, "reason": "x" * 201}, "invalid_reason"),
        ([1, 2], "invalid_body"),
    ],
)
def test_invalid_body(client, alice, body, error):
    response = client.post(
        f"/internal/contributors/{alice}/debits", json=body, headers={"Idempotency-Key": "k"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == error
    assert balance(client, alice) == 20


def test_non_json_body(client, alice):
    response = client.post(
        f"/internal/contributors/{alice}/debits",
        data="amount=5",
        headers={"Idempotency-Key": "k"},
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_body"


def _concurrently(app, calls):
    """Run ``calls`` (functions of a test client) at once, each in its own thread."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        client = app.test_client()
        barrier.wait()
        return call(client)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_twenty_concurrent_debits_against_a_balance_for_four(app, client, alice, clean_db):
    calls = [lambda c, n=n: debit(c, "alice", 5, f"concurrent-{n}") for n in range(20)]
    responses = _concurrently(app, calls)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 4 + [409] * 16
    assert sorted(r.get_json()["balance"] for r in responses if r.status_code == 201) == [
        0,
        5,
        10,
        15,
    ]
    assert balance(client, alice) == 0
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM debits").fetchone()[0] == 4
        total = conn.execute("SELECT sum(amount) FROM ledger_entries").fetchone()[0]
        assert total == 0


def test_concurrent_retries_of_one_key_debit_once(app, client, alice):
    responses = _concurrently(app, [lambda c: debit(c, "alice", 5, "same-key")] * 10)
    assert [r.status_code for r in responses] == [201] * 10
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9
    assert balance(client, alice) == 15


def test_database_refuses_a_negative_balance(clean_db):
    """The floor at zero is a CHECK constraint, not only the conditional UPDATE."""
    with psycopg.connect(clean_db) as conn:
        conn.execute("INSERT INTO contributors (login, balance) VALUES ('alice', 3)")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE contributors SET balance = balance - 4 WHERE login = 'alice'")
