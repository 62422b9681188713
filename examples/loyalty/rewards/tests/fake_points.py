"""An in-memory stand-in for the points service's debit endpoint, at the HTTP layer
(``httpx.MockTransport``): it answers like points does (201 / 404 / 409 / 422, idempotency by
key) and records every request, so tests check both what rewards sends and how it reacts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

DEBIT_PATH = re.compile(r"^/internal/contributors/([^/]+)/debits$")


@dataclass
class FakePoints:
    balances: dict[str, int] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    debits: dict[str, tuple[dict, dict]] = field(default_factory=dict)  # key -> (request, response)
    failures: list = field(default_factory=list)  # queued: an int status or an exception
    next_id: int = 1

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return httpx.Response(failure, json={"error": "unavailable"})
        match = DEBIT_PATH.match(request.url.path)
        if request.method != "POST" or not match:
            return httpx.Response(404, json={"error": "not_found", "message": "no route"})
        login = match[1]
        key = request.headers.get("Idempotency-Key")
        if not key:
            return httpx.Response(400, json={"error": "missing_idempotency_key"})
        body = json.loads(request.content)
        amount = body["amount"]
        if key in self.debits:
            stored_request, stored = self.debits[key]
            if stored_request != {"login": login, **body}:
                return httpx.Response(
                    422, json={"error": "idempotency_key_reused", "message": "reused"}
                )
            return httpx.Response(201, json=stored, headers={"Idempotent-Replayed": "true"})
        if login not in self.balances:
            return httpx.Response(
                404, json={"error": "unknown_contributor", "message": f"no contributor {login!r}"}
            )
        if self.balances[login] < amount:
            balance = self.balances[login]
            return httpx.Response(
                409,
                json={
                    "error": "insufficient_balance",
                    "message": f"{login} has {balance} points, {amount} needed",
                    "balance": balance,
                    "required": amount,
                },
            )
        self.balances[login] -= amount
        stored = {
            "id": self.next_id,
            "login": login,
            "amount": amount,
            "reason": body["reason"],
            "balance": self.balances[login],
            "idempotency_key": key,
            "created_at": datetime.now(UTC).isoformat(),
        }
        self.next_id += 1
        self.debits[key] = ({"login": login, **body}, stored)
        return httpx.Response(201, json=stored)
