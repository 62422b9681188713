"""Helpers shared by the tests: signing and sending webhooks as GitHub does, reading balances."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from itertools import count

SECRET = "test-webhook-secret"

_deliveries = count(1)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class GitHub:
    """Sends webhook deliveries the way GitHub does."""

    def __init__(self, client) -> None:
        self.client = client

    def send(
        self, event: str, payload: dict, *, delivery: str | None = None, signature=None, body=None
    ):
        raw = body if body is not None else json.dumps(payload).encode()
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or f"delivery-{next(_deliveries)}-{uuid.uuid4()}",
            "X-Hub-Signature-256": sign(raw) if signature is None else signature,
        }
        if signature is False:
            del headers["X-Hub-Signature-256"]
        return self.client.post(
            "/webhooks/github", data=raw, headers=headers, content_type="application/json"
        )

    def push(self, *commits: tuple[str, str | None], repo: str = "pycon/sprints", **kwargs):
        return self.send("push", push_payload(*commits, repo=repo), **kwargs)

    def close_issue(
        self, login: str, issue_id: int, *, state_reason="completed", number=None, **kwargs
    ):
        return self.send(
            "issues",
            issue_payload(login, issue_id, state_reason=state_reason, number=number),
            **kwargs,
        )


def push_payload(*commits: tuple[str, str | None], repo: str = "pycon/sprints") -> dict:
    return {
        "ref": "refs/heads/main",
        "repository": {"full_name": repo},
        "sender": {"login": "someone"},
        "commits": [
            {
                "id": sha,
                "distinct": True,
                "message": f"change {sha[:7]}",
                "url": f"https://github.com/{repo}/commit/{sha}",
                "author": {
                    "name": "N",
                    "email": "n@example.org",
                    **({"username": user} if user else {}),
                },
            }
            for sha, user in commits
        ],
    }


def issue_payload(
    login: str, issue_id: int, *, state_reason="completed", number=None, action="closed"
) -> dict:
    return {
        "action": action,
        "repository": {"full_name": "pycon/sprints"},
        "sender": {"login": login},
        "issue": {
            "id": issue_id,
            "number": number if number is not None else issue_id % 1000,
            "state": "closed",
            "state_reason": state_reason,
            "html_url": f"https://github.com/pycon/sprints/issues/{issue_id % 1000}",
        },
    }


def sha(n: int) -> str:
    return hashlib.sha1(str(n).encode()).hexdigest()


def balance(client, login: str) -> int | None:
    response = client.get(f"/api/contributors/{login}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.get_json()
    return response.get_json()["balance"]


def debit(client, login: str, amount: int, key: str, reason: str = "coffee"):
    return client.post(
        f"/internal/contributors/{login}/debits",
        json={"amount": amount, "reason": reason},
        headers={"Idempotency-Key": key},
    )
