"""The points service's WSGI application.

Served by gunicorn, never Flask's development server::

    gunicorn --bind 0.0.0.0:8000 --access-logfile - 'points.app:create_app()'

Routes:

    POST /webhooks/github                       GitHub webhooks (push, issues), signed
    GET  /api/contributors                      leaderboard (?limit=, default 10)
    GET  /api/contributors/<login>              balance and history (?limit=, default 50)
    POST /internal/contributors/<login>/debits  debit points (rewards service only)
    GET  /health                                ready: the database answers within 2 s
    GET  /health/live                           alive: the process serves requests
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from points import ledger, webhooks
from points.config import Settings
from points.db import Database, DatabaseUnavailable

log = logging.getLogger("points")

# GitHub logins: letters, digits and single hyphens, at most 39; apps' bots end in "[bot]".
LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$")
MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
MAX_DEBIT = 1_000_000
MAX_KEY_LENGTH = 200
MAX_REASON_LENGTH = 200
HEALTH_TIMEOUT = 2.0

api = Blueprint("points", __name__)


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra

    def response(self):
        return jsonify({"error": self.error, "message": self.message, **self.extra}), self.status


def create_app(settings: Settings | None = None) -> Flask:
    """Build the application from ``settings`` (by default, from the environment)."""
    settings = settings or Settings.from_env()
    _configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    app.extensions["points.settings"] = settings
    app.extensions["points.db"] = Database(
        settings.database_url, max_size=settings.db_pool_size, timeout=settings.db_timeout
    )
    app.register_blueprint(api)
    _register_error_handlers(app)
    return app


def _configure_logging(level: str) -> None:
    """Application logs go to stdout (L14); gunicorn keeps its own access and error logs."""
    logger = logging.getLogger("points")
    if not any(getattr(h, "_points_stdout", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._points_stdout = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return exc.response()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        name = re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
        return jsonify({"error": name, "message": exc.description}), exc.code

    @app.errorhandler(DatabaseUnavailable)
    def database_unavailable(exc: DatabaseUnavailable):
        log.error("database unavailable: %s", exc)
        return jsonify(
            {"error": "database_unavailable", "message": "the ledger database is not reachable"}
        ), 503

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify({"error": "internal_error", "message": "internal server error"}), 500


def _db() -> Database:
    return current_app.extensions["points.db"]


def _settings() -> Settings:
    return current_app.extensions["points.settings"]


def _valid_login(login: str) -> str:
    if not LOGIN.match(login):
        raise ApiError(400, "invalid_login", f"{login!r} is not a GitHub login")
    return login


def _limit(default: int, maximum: int) -> int:
    text = request.args.get("limit")
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {maximum}")
    return value


@api.post("/webhooks/github")
def github_webhook():
    body = request.get_data(cache=True)
    signature = request.headers.get("X-Hub-Signature-256")
    if not webhooks.signature_valid(_settings().webhook_secret.encode(), body, signature):
        log.warning(
            "rejected webhook delivery %s: %s signature",
            request.headers.get("X-GitHub-Delivery", "-"),
            "bad" if signature else "missing",
        )
        raise ApiError(
            401, "invalid_signature", "X-Hub-Signature-256 is missing or does not sign this body"
        )
    delivery = request.headers.get("X-GitHub-Delivery", "").strip()
    event = request.headers.get("X-GitHub-Event", "").strip()
    if not delivery or len(delivery) > 200:
        raise ApiError(400, "missing_delivery", "X-GitHub-Delivery header is required")
    if not event:
        raise ApiError(400, "missing_event", "X-GitHub-Event header is required")
    try:
        outcome = webhooks.credits_for(event, webhooks.parse_payload(body, request.mimetype))
    except webhooks.PayloadError as exc:
        raise ApiError(400, "invalid_payload", str(exc)) from None

    credited = []
    with _db().connection() as conn:
        if not ledger.record_delivery(conn, delivery, event):
            log.info("delivery %s (%s) already processed: ignored", delivery, event)
            return jsonify(
                {"delivery": delivery, "event": event, "status": "duplicate", "credited": []}
            )
        for credit in outcome.credits:
            balance = ledger.credit(conn, credit, delivery)
            if balance is None:
                log.info("%s already credited: skipped", credit.source_key)
                continue
            credited.append(
                {
                    "login": credit.login,
                    "points": credit.amount,
                    "reason": credit.reason,
                    "balance": balance,
                }
            )
    for c in credited:
        log.info(
            "credited %d to %s for %s (delivery %s)", c["points"], c["login"], c["reason"], delivery
        )
    result: dict[str, Any] = {
        "delivery": delivery,
        "event": event,
        "status": "ignored" if outcome.ignored else "processed",
        "credited": credited,
    }
    if outcome.ignored:
        result["reason"] = outcome.ignored
    return jsonify(result)


@api.get("/api/contributors")
def leaderboard():
    limit = _limit(10, 100)
    with _db().connection() as conn:
        return jsonify({"contributors": ledger.leaderboard(conn, limit)})


@api.get("/api/contributors/<login>")
def contributor(login: str):
    _valid_login(login)
    limit = _limit(50, 500)
    with _db().connection() as conn:
        found = ledger.contributor(conn, login, limit)
    if found is None:
        raise ApiError(404, "unknown_contributor", f"no contributor {login!r}")
    return jsonify(found)


@api.post("/internal/contributors/<login>/debits")
def debit(login: str):
    """Debit points; called by the rewards service. Not routed by the public gateway."""
    _valid_login(login)
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApiError(
            400,
            "missing_idempotency_key",
            f"an Idempotency-Key header of 1 to {MAX_KEY_LENGTH} characters is required",
        )
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(
            400, "invalid_body", 'body must be a JSON object: {"amount": N, "reason": "..."}'
        )
    amount = data.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= MAX_DEBIT:
        raise ApiError(400, "invalid_amount", f"amount must be an integer from 1 to {MAX_DEBIT}")
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise ApiError(
            400,
            "invalid_reason",
            f"reason must be a non-empty string of at most {MAX_REASON_LENGTH} characters",
        )
    reason = reason.strip()
    try:
        with _db().connection() as conn:
            result, replayed = ledger.debit(conn, login, amount, reason, key)
    except ledger.UnknownContributor:
        raise ApiError(404, "unknown_contributor", f"no contributor {login!r}") from None
    except ledger.InsufficientBalance as exc:
        raise ApiError(
            409, "insufficient_balance", str(exc), balance=exc.balance, required=exc.required
        ) from None
    except ledger.IdempotencyKeyReused as exc:
        raise ApiError(422, "idempotency_key_reused", str(exc)) from None
    if replayed:
        log.info("debit %s replayed", key)
    else:
        log.info(
            "debited %d from %s for %r (balance %d)", amount, result.login, reason, result.balance
        )
    response = jsonify(result.to_json())
    response.status_code = 201
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@api.get("/health")
def health():
    try:
        _db().ping(HEALTH_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("health check: database unavailable: %s", exc)
        return jsonify({"status": "unavailable", "database": "unavailable"}), 503
    return jsonify({"status": "ok", "database": "ok"})


@api.get("/health/live")
def live():
    return jsonify({"status": "ok"})
