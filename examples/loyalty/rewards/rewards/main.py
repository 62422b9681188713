"""The rewards service's ASGI application, ``app``.

Served by gunicorn with uvicorn workers (or uvicorn alone), never a development server::

    gunicorn --bind 0.0.0.0:8000 --access-logfile - -k uvicorn_worker.UvicornWorker rewards.main:app

Routes:

    GET  /api/rewards           the catalogue
    GET  /api/rewards/{id}      one reward
    POST /api/redemptions       {"login", "reward"} -> 201 {"voucher", "balance", ...}
    GET  /health                alive
"""

from __future__ import annotations

import base64
import hashlib
import logging
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rewards import catalog
from rewards.config import Settings
from rewards.points import (
    InsufficientBalance,
    KeyReused,
    PointsClient,
    PointsUnavailable,
    UnknownContributor,
)

log = logging.getLogger("rewards")

LOGIN_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$"
KEY_PATTERN = r"^[\x21-\x7e]{1,100}$"  # visible ASCII, no spaces


def _configure_logging(level: str) -> None:
    """Application logs go to stdout (L14)."""
    logger = logging.getLogger("rewards")
    if not any(getattr(h, "_rewards_stdout", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._rewards_stdout = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = Settings.from_env()
    _configure_logging(settings.log_level)
    app.state.points = PointsClient(
        settings.points_url, timeout=settings.points_timeout, retries=settings.points_retries
    )
    log.info("rewards ready; points service at %s", settings.points_url)
    try:
        yield
    finally:
        await app.state.points.aclose()


app = FastAPI(
    title="loyalty rewards",
    version="1.0.0",
    summary="Redeem sprint-contributor points for coffee.",
    lifespan=lifespan,
)


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.extra = status, error, message, extra


@app.exception_handler(ApiError)
async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse({"error": exc.error, "message": exc.message, **exc.extra}, exc.status)


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        {"error": error, "message": str(exc.detail)}, exc.status_code, headers=exc.headers
    )


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    details = [
        {"field": ".".join(str(part) for part in e.get("loc", ())), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "invalid request"
    return JSONResponse({"error": "invalid_request", "message": message, "details": details}, 422)


def get_points(request: Request) -> PointsClient:
    return request.app.state.points


class RedemptionRequest(BaseModel):
    login: str = Field(pattern=LOGIN_PATTERN, description="the contributor's GitHub login")
    reward: str = Field(min_length=1, max_length=50, description="a reward id, e.g. coffee")


class Redemption(BaseModel):
    voucher: str
    login: str
    reward: str
    cost: int
    balance: int
    redeemed_at: str
    idempotency_key: str


def voucher_code(reward_id: str, key: str, debit_id: int) -> str:
    """The voucher for a debit: the same for a retried redemption, unguessable without its
    (random) idempotency key."""
    digest = hashlib.sha256(f"{key}:{debit_id}".encode()).digest()
    code = base64.b32encode(digest).decode()[:10]
    return f"{reward_id.upper()}-{code[:5]}-{code[5:]}"


@app.get("/api/rewards")
async def list_rewards() -> dict[str, list[catalog.Reward]]:
    return {"rewards": list(catalog.CATALOG)}


@app.get("/api/rewards/{reward_id}")
async def get_reward(reward_id: str) -> catalog.Reward:
    reward = catalog.find(reward_id)
    if reward is None:
        raise ApiError(404, "unknown_reward", f"no reward {reward_id!r}")
    return reward


@app.post("/api/redemptions", status_code=201)
async def redeem(
    body: RedemptionRequest,
    points: Annotated[PointsClient, Depends(get_points)],
    idempotency_key: Annotated[str | None, Header(pattern=KEY_PATTERN)] = None,
) -> Redemption:
    """Spend points on a reward. Send an ``Idempotency-Key`` header to make retries safe: the
    same key always answers with the same voucher and debits once."""
    reward = catalog.find(body.reward)
    if reward is None:
        raise ApiError(404, "unknown_reward", f"no reward {body.reward!r}")
    key = idempotency_key or uuid.uuid4().hex
    try:
        debit = await points.debit(
            body.login, reward.cost, f"redeemed {reward.id}", f"redemption:{key}"
        )
    except UnknownContributor:
        raise ApiError(404, "unknown_contributor", f"no contributor {body.login!r}") from None
    except InsufficientBalance as exc:
        raise ApiError(
            409,
            "insufficient_balance",
            f"{body.login} has {exc.balance} points; {reward.name} costs {reward.cost}",
            balance=exc.balance,
            cost=reward.cost,
        ) from None
    except KeyReused:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different redemption",
        ) from None
    except PointsUnavailable:
        raise ApiError(
            503, "points_unavailable", "the points service is unavailable; try again"
        ) from None
    if not debit.replayed:
        log.info("%s redeemed %s (balance %d)", debit.login, reward.id, debit.balance)
    return Redemption(
        voucher=voucher_code(reward.id, key, debit.id),
        login=debit.login,
        reward=reward.id,
        cost=reward.cost,
        balance=debit.balance,
        redeemed_at=debit.created_at,
        idempotency_key=key,
    )


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
