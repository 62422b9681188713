"""POST /webhooks/github against a real PostgreSQL."""

import urllib.parse

import psycopg
import pytest
from support import balance, issue_payload, push_payload, sha, sign


def count_rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_push_credits_one_point_per_commit_to_each_author(client, github):
    response = github.push((sha(1), "alice"), (sha(2), "alice"), (sha(3), "bob"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "processed"
    assert [(c["login"], c["points"], c["balance"]) for c in body["credited"]] == [
        ("alice", 1, 1),
        ("alice", 1, 2),
        ("bob", 1, 1),
    ]
    assert balance(client, "alice") == 2
    assert balance(client, "bob") == 1


def test_commit_listed_twice_in_a_push_counts_once(client, github):
    github.push((sha(1), "alice"), (sha(1), "alice"), (sha(2), "alice"))
    assert balance(client, "alice") == 2


def test_commit_without_github_author_credits_nobody(client, github, clean_db):
    response = github.push((sha(1), None))
    assert response.status_code == 200 and response.get_json()["credited"] == []
    assert count_rows(clean_db, "contributors") == 0


def test_completed_issue_credits_five_points_to_the_closer(client, github):
    response = github.close_issue("carol", 501)
    assert response.status_code == 200
    assert response.get_json()["credited"] == [
        {"login": "carol", "points": 5, "reason": "closed issue pycon/sprints#501", "balance": 5}
    ]
    assert balance(client, "carol") == 5


@pytest.mark.parametrize("state_reason", ["not_planned", "duplicate"])
def test_issue_closed_as_not_completed_earns_nothing(client, github, state_reason):
    response = github.close_issue("carol", 502, state_reason=state_reason)
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    assert balance(client, "carol") is None


def test_opened_issue_earns_nothing(client, github):
    response = github.send("issues", issue_payload("carol", 503, action="opened"))
    assert response.get_json()["status"] == "ignored"
    assert balance(client, "carol") is None


def test_replayed_delivery_credits_nothing_twice(client, github):
    first = github.push((sha(1), "alice"), (sha(2), "alice"), delivery="d-1")
    assert first.get_json()["status"] == "processed"
    replay = github.push((sha(1), "alice"), (sha(2), "alice"), delivery="d-1")
    assert replay.status_code == 200
    assert replay.get_json() == {
        "delivery": "d-1",
        "event": "push",
        "status": "duplicate",
        "credited": [],
    }
    assert balance(client, "alice") == 2


def test_replayed_delivery_is_recognised_even_with_another_body(client, github):
    github.push((sha(1), "alice"), delivery="d-1")
    github.push((sha(2), "alice"), delivery="d-1")
    assert balance(client, "alice") == 1


def test_same_commit_in_another_delivery_credits_nothing_twice(client, github):
    # The same commit pushed to a second branch arrives in a new delivery.
    github.push((sha(1), "alice"), delivery="d-1")
    response = github.push((sha(1), "alice"), (sha(2), "alice"), delivery="d-2")
    assert [c["reason"][:14] for c in response.get_json()["credited"]] == [f"commit {sha(2)[:7]}"]
    assert balance(client, "alice") == 2


def test_issue_closed_again_after_reopening_credits_nothing_twice(client, github):
    github.close_issue("carol", 600)
    github.send("issues", issue_payload("carol", 600, action="reopened"))
    github.close_issue("carol", 600)
    github.close_issue("dave", 600)  # closed by someone else the third time
    assert balance(client, "carol") == 5
    assert balance(client, "dave") is None


def test_logins_are_case_insensitive(client, github):
    github.push((sha(1), "Alice"))
    github.push((sha(2), "alice"))
    response = client.get("/api/contributors/ALICE")
    assert response.get_json()["login"] == "Alice"
    assert response.get_json()["balance"] == 2


@pytest.mark.parametrize(
    "signature",
    [
        False,  # header missing
        "",
        "sha256=" + "0" * 64,
        sign(b"another body"),
        sign(b'{"commits": []}', secret="wrong secret"),
    ],
)
def test_bad_or_missing_signature_is_401_and_changes_nothing(client, github, clean_db, signature):
    github.push((sha(1), "alice"), delivery="d-1")
    payload_body = push_payload((sha(2), "alice"), (sha(3), "mallory"))
    import json

    raw = json.dumps(payload_body).encode()
    response = github.send("push", payload_body, delivery="d-2", signature=signature, body=raw)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_signature"
    assert balance(client, "alice") == 1
    assert balance(client, "mallory") is None
    assert count_rows(clean_db, "deliveries") == 1
    # The rejected delivery was not recorded: sent properly signed, it is processed.
    response = github.send("push", payload_body, delivery="d-2", body=raw)
    assert response.get_json()["status"] == "processed"
    assert balance(client, "alice") == 2


def test_signature_must_cover_the_exact_raw_body(client, github):
    raw = b'{"commits": [{"id": "abc", "author": {"username": "alice"}}]}'
    reformatted = b'{"commits":[{"id":"abc","author":{"username":"alice"}}]}'
    response = github.send("push", {}, body=reformatted, signature=sign(raw))
    assert response.status_code == 401
    assert balance(client, "alice") is None


def test_form_encoded_delivery(client):
    import json

    payload = json.dumps(push_payload((sha(1), "alice")))
    raw = urllib.parse.urlencode({"payload": payload}).encode()
    response = client.post(
        "/webhooks/github",
        data=raw,
        content_type="application/x-www-form-urlencoded",
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "f-1",
            "X-Hub-Signature-256": sign(raw),
        },
    )
    assert response.status_code == 200, response.get_json()
    assert balance(client, "alice") == 1


def test_ping(client, github):
    response = github.send("ping", {"zen": "Design for failure.", "hook_id": 1})
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"


def test_missing_delivery_header(client):
    raw = b"{}"
    response = client.post(
        "/webhooks/github",
        data=raw,
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(raw)},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "missing_delivery"


def test_missing_event_header(client):
    raw = b"{}"
    response = client.post(
        "/webhooks/github",
        data=raw,
        headers={"X-GitHub-Delivery": "x", "X-Hub-Signature-256": sign(raw)},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "missing_event"


def test_invalid_json_is_400_and_not_recorded(client, github, clean_db):
    response = github.send("push", {}, body=b"{not json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_payload"
    assert count_rows(clean_db, "deliveries") == 0


def test_malformed_push_credits_nothing_at_all(client, github, clean_db):
    payload = push_payload((sha(1), "alice"))
    payload["commits"].append({"id": 42, "author": {"username": "alice"}})
    response = github.send("push", payload)
    assert response.status_code == 400
    assert balance(client, "alice") is None
    assert count_rows(clean_db, "deliveries") == 0


def test_body_too_large(client, github):
    response = github.send("push", {}, body=b" " * (25 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"


def test_source_keys_are_unique_in_the_database(clean_db):
    """Replays are refused by the schema itself, not only by the Python code."""
    with psycopg.connect(clean_db) as conn:
        cid = conn.execute(
            "INSERT INTO contributors (login) VALUES ('alice') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO ledger_entries (contributor_id, amount, kind, source_key, reason) "
            "VALUES (%s, 1, 'commit', 'commit:abc', 'x')",
            (cid,),
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO ledger_entries (contributor_id, amount, kind, source_key, reason) "
                "VALUES (%s, 1, 'commit', 'commit:abc', 'x')",
                (cid,),
            )
        conn.rollback()
        conn.execute("INSERT INTO deliveries (delivery_id, event) VALUES ('d', 'push')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO deliveries (delivery_id, event) VALUES ('d', 'push')")
        conn.rollback()
        conn.execute("INSERT INTO contributors (login) VALUES ('bob')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO contributors (login) VALUES ('BOB')")
