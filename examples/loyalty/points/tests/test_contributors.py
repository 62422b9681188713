"""GET /api/contributors and /api/contributors/<login>."""

import pytest
from support import debit, sha


def test_unknown_contributor_is_404(client):
    response = client.get("/api/contributors/nobody")
    assert response.status_code == 404
    assert response.get_json() == {
        "error": "unknown_contributor",
        "message": "no contributor 'nobody'",
    }


@pytest.mark.parametrize("login", ["-dash", "a_b", "x" * 40, "dot.ted"])
def test_invalid_login_is_400(client, login):
    response = client.get(f"/api/contributors/{login}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_login"


def test_balance_and_history_newest_first(client, github):
    github.push((sha(1), "alice"), (sha(2), "alice"), delivery="d-push")
    github.close_issue("alice", 77, delivery="d-issue")
    assert debit(client, "alice", 5, "k-1", reason="coffee").status_code == 201

    response = client.get("/api/contributors/alice")
    assert response.status_code == 200
    body = response.get_json()
    assert body["login"] == "alice"
    assert body["balance"] == 2
    assert (body["earned"], body["spent"], body["history_total"]) == (7, 5, 4)
    history = body["history"]
    assert [(e["kind"], e["amount"]) for e in history] == [
        ("debit", -5),
        ("issue", 5),
        ("commit", 1),
        ("commit", 1),
    ]
    assert history[0]["reason"] == "coffee" and history[0]["delivery"] is None
    assert history[1]["reason"] == "closed issue pycon/sprints#77"
    assert history[1]["delivery"] == "d-issue"
    assert history[1]["url"] == "https://github.com/pycon/sprints/issues/77"
    assert history[3]["reason"] == f"commit {sha(1)[:7]} to pycon/sprints"
    assert all(
        set(e) == {"id", "amount", "kind", "reason", "url", "delivery", "at"} for e in history
    )
    # The history adds up to the balance.
    assert sum(e["amount"] for e in history) == body["balance"]


def test_history_limit(client, github):
    github.push(*[(sha(n), "alice") for n in range(7)])
    body = client.get("/api/contributors/alice?limit=3").get_json()
    assert len(body["history"]) == 3
    assert body["history_total"] == 7
    assert body["balance"] == 7


@pytest.mark.parametrize("limit", ["0", "501", "many", "-1"])
def test_invalid_limit(client, github, limit):
    github.push((sha(1), "alice"))
    response = client.get(f"/api/contributors/alice?limit={limit}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_limit"


def test_leaderboard(client, github):
    github.push((sha(1), "bob"), (sha(2), "alice"), (sha(3), "alice"), (sha(4), "carol"))
    github.close_issue("carol", 9)
    body = client.get("/api/contributors").get_json()
    assert body == {
        "contributors": [
            {"login": "carol", "balance": 6},
            {"login": "alice", "balance": 2},
            {"login": "bob", "balance": 1},
        ]
    }
    assert client.get("/api/contributors?limit=1").get_json()["contributors"] == [
        {"login": "carol", "balance": 6}
    ]
