"""GET /api/rewards, POST /api/redemptions, GET /health."""

import json
import re

import httpx
import pytest


def redeem(client, login="alice", reward="coffee", key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/redemptions", json={"login": login, "reward": reward}, headers=headers)


def test_catalogue(client):
    response = client.get("/api/rewards")
    assert response.status_code == 200
    rewards = {r["id"]: r for r in response.json()["rewards"]}
    assert {"coffee", "tea", "sticker"} <= set(rewards)
    assert rewards["coffee"]["cost"] == 5
    assert all(set(r) == {"id", "name", "cost", "description"} for r in rewards.values())
    assert all(isinstance(r["cost"], int) and r["cost"] > 0 for r in rewards.values())


def test_one_reward(client):
    assert client.get("/api/rewards/tea").json()["id"] == "tea"
    response = client.get("/api/rewards/caviar")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown_reward", "message": "no reward 'caviar'"}


def test_redeem_coffee(client, points):
    response = redeem(client)
    assert response.status_code == 201
    body = response.json()
    assert (body["login"], body["reward"], body["cost"], body["balance"]) == (
        "alice",
        "coffee",
        5,
        15,
    )
    assert re.fullmatch(r"COFFEE-[A-Z2-7]{5}-[A-Z2-7]{5}", body["voucher"])
    assert body["redeemed_at"]
    assert points.balances["alice"] == 15
    # What went over the wire to points.
    (sent,) = points.requests
    assert sent.method == "POST"
    assert str(sent.url) == "http://points.test:8000/internal/contributors/alice/debits"
    assert json.loads(sent.content) == {"amount": 5, "reason": "redeemed coffee"}
    assert sent.headers["Idempotency-Key"] == f"redemption:{body['idempotency_key']}"


def test_each_redemption_gets_its_own_key_and_voucher(client, points):
    first, second = redeem(client).json(), redeem(client).json()
    assert first["idempotency_key"] != second["idempotency_key"]
    assert first["voucher"] != second["voucher"]
    assert second["balance"] == 10 and points.balances["alice"] == 10


def test_client_key_makes_a_retry_safe(client, points):
    first = redeem(client, key="order-42")
    retry = redeem(client, key="order-42")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert points.balances["alice"] == 15
    assert len(points.debits) == 1


def test_client_key_reused_for_another_reward_is_422(client, points):
    redeem(client, key="order-42", reward="coffee")
    response = redeem(client, key="order-42", reward="tea")
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert points.balances["alice"] == 15


def test_balance_too_low_is_409(client, points):
    response = redeem(client, login="bob", reward="coffee")
    assert response.status_code == 409
    assert response.json() == {
        "error": "insufficient_balance",
        "message": "bob has 3 points; Coffee costs 5",
        "balance": 3,
        "cost": 5,
    }
    assert points.balances["bob"] == 3
    # Tea at 3 is still within reach.
    assert redeem(client, login="bob", reward="tea").json()["balance"] == 0


def test_unknown_reward_is_404_without_calling_points(client, points):
    response = redeem(client, reward="caviar")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_reward"
    assert points.requests == []


def test_unknown_contributor_is_404(client, points):
    response = redeem(client, login="nobody")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown_contributor", "message": "no contributor 'nobody'"}


@pytest.mark.parametrize(
    "body",
    [
        {"login": "alice"},
        {"reward": "coffee"},
        {"login": "../admin", "reward": "coffee"},
        {"login": "a/b", "reward": "coffee"},
        {"login": "", "reward": "coffee"},
        {"login": "alice", "reward": ""},
        {"login": 5, "reward": "coffee"},
    ],
)
def test_invalid_request_is_422_json(client, points, body):
    response = client.post("/api/redemptions", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["details"]
    assert points.requests == []


def test_malformed_json_is_422(client, points):
    response = client.post(
        "/api/redemptions", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"


def test_invalid_idempotency_key_is_422(client, points):
    response = redeem(client, key="has spaces in it")
    assert response.status_code == 422
    assert points.requests == []


def test_points_outage_is_retried_with_the_same_key(client, points):
    points.failures = [httpx.ConnectError("refused"), 503]
    response = redeem(client)
    assert response.status_code == 201
    assert len(points.requests) == 3
    assert len({r.headers["Idempotency-Key"] for r in points.requests}) == 1
    assert points.balances["alice"] == 15


def test_points_down_is_503(client, points):
    points.failures = [httpx.ConnectError("refused")] * 3
    response = redeem(client)
    assert response.status_code == 503
    assert response.json()["error"] == "points_unavailable"
    assert len(points.requests) == 3
    assert points.balances["alice"] == 20


def test_points_answering_garbage_is_503(client, points):
    points.failures = [500]
    response = redeem(client)
    assert response.status_code == 503
    assert len(points.requests) == 1  # a 500 is not retried


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_unknown_route_is_json_404(client):
    response = client.get("/nope")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_points_url_from_the_environment_over_real_http(monkeypatch):
    """Without the fake: the app reads POINTS_URL at startup and talks HTTP to it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from fastapi.testclient import TestClient

    from rewards.main import app

    seen = []

    class Points(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers["Idempotency-Key"], body))
            reply = json.dumps(
                {
                    "id": 7,
                    "login": "alice",
                    "amount": body["amount"],
                    "reason": body["reason"],
                    "balance": 15,
                    "idempotency_key": self.headers["Idempotency-Key"],
                    "created_at": "2026-05-17T10:00:00+00:00",
                }
            ).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Points)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("POINTS_URL", f"http://127.0.0.1:{server.server_port}")
        with TestClient(app) as client:
            response = redeem(client, key="k-1")
        assert response.status_code == 201, response.json()
        assert response.json()["balance"] == 15
        assert seen == [
            (
                "/internal/contributors/alice/debits",
                "redemption:k-1",
                {"amount": 5, "reason": "redeemed coffee"},
            )
        ]
    finally:
        server.shutdown()
        server.server_close()
