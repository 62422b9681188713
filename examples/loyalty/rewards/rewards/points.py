"""Client for the points service's debit endpoint."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import quote

import httpx

log = logging.getLogger("rewards.points")

RETRY_STATUSES = {502, 503, 504}


class PointsError(Exception):
    """The points service refused or failed a debit."""


class UnknownContributor(PointsError):
    pass


class InsufficientBalance(PointsError):
    def __init__(self, balance: int | None, required: int) -> None:
        super().__init__(f"balance {balance}, {required} needed")
        self.balance = balance
        self.required = required


class KeyReused(PointsError):
    pass


class PointsUnavailable(PointsError):
    """Unreachable, timing out, or answering with something it should not."""


@dataclass(frozen=True)
class Debit:
    id: int
    login: str
    amount: int
    balance: int
    created_at: str
    replayed: bool


class PointsClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "loyalty-rewards"},
        )
        self._retries = retries
        self._backoff = backoff

    async def aclose(self) -> None:
        await self._http.aclose()

    async def debit(self, login: str, amount: int, reason: str, key: str) -> Debit:
        path = f"/internal/contributors/{quote(login, safe='')}/debits"
        body = {"amount": amount, "reason": reason}
        attempt = 0
        while True:
            try:
                response = await self._http.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in RETRY_STATUSES:
                    return self._result(response, amount)
                problem = f"HTTP {response.status_code}"
            if attempt >= self._retries:
                log.error("points debit %s failed after %d attempts: %s", key, attempt + 1, problem)
                raise PointsUnavailable(problem)
            attempt += 1
            log.warning(
                "points debit %s: %s; retrying (%d/%d)", key, problem, attempt, self._retries
            )
            await asyncio.sleep(self._backoff * 2 ** (attempt - 1))

    @staticmethod
    def _result(response: httpx.Response, amount: int) -> Debit:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise PointsUnavailable(f"HTTP {response.status_code} without a JSON object")
        status = response.status_code
        if status in (200, 201):
            try:
                return Debit(
                    id=int(data["id"]),
                    login=str(data["login"]),
                    amount=int(data["amount"]),
                    balance=int(data["balance"]),
                    created_at=str(data["created_at"]),
                    replayed=response.headers.get("Idempotent-Replayed") == "true",
                )
            except (KeyError, TypeError, ValueError):
                raise PointsUnavailable(f"unexpected debit response: {data!r}") from None
        if status == 404 and data.get("error") == "unknown_contributor":
            raise UnknownContributor(data.get("message", "unknown contributor"))
        if status == 409:
            balance = data.get("balance")
            raise InsufficientBalance(balance if isinstance(balance, int) else None, amount)
        if status == 422:
            raise KeyReused(data.get("message", "idempotency key reused"))
        raise PointsUnavailable(f"HTTP {status}: {data.get('error', data)}")
