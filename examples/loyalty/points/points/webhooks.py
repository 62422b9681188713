"""GitHub webhooks: signature verification and the crediting rules.

Nothing here touches the database: :func:`credits_for` turns an event into the credits it is
worth, and the ledger books them (at most once each).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

POINTS_PER_COMMIT = 1
POINTS_PER_ISSUE = 5
MAX_LOGIN_LENGTH = 100


class PayloadError(ValueError):
    """The payload is signed but not a webhook payload this service understands."""


@dataclass(frozen=True)
class Credit:
    login: str
    amount: int
    kind: str  # "commit" or "issue"
    source_key: str  # what is credited, at most once: "commit:<sha>", "issue:<id>"
    reason: str
    url: str | None = None


@dataclass(frozen=True)
class Outcome:
    credits: list[Credit] = field(default_factory=list)
    ignored: str | None = None  # why the event earns nothing, when it is ignored as a whole


def expected_signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (X-Hub-Signature-256) signs ``body`` with ``secret``; constant time."""
    if not header:
        return False
    expected = expected_signature(secret, body).encode()
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "replace"))


def parse_payload(body: bytes, mimetype: str) -> dict[str, Any]:
    """The JSON payload, sent either as ``application/json`` or, when the webhook is configured
    with ``application/x-www-form-urlencoded``, in the ``payload`` form field."""
    try:
        if mimetype == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
            if "payload" not in fields:
                raise PayloadError("form-encoded delivery without a payload field")
            text = fields["payload"][0]
        else:
            text = body.decode("utf-8")
        payload = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise PayloadError("payload must be a JSON object")
    return payload


def credits_for(event: str, payload: dict[str, Any]) -> Outcome:
    if event == "push":
        return Outcome(credits=_push(payload))
    if event == "issues":
        return _issues(payload)
    if event == "ping":
        return Outcome(ignored="ping")
    return Outcome(ignored=f"{event} events earn no points")


def _repository(payload: dict[str, Any]) -> str:
    repo = payload.get("repository")
    if isinstance(repo, dict) and isinstance(repo.get("full_name"), str):
        return repo["full_name"]
    return "unknown repository"


def _login(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LOGIN_LENGTH:
        raise PayloadError(f"{what} must be a GitHub login")
    return value.strip()


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} must be an object")
    return value


def _push(payload: dict[str, Any]) -> list[Credit]:
    commits = payload.get("commits", [])
    if not isinstance(commits, list):
        raise PayloadError("push: commits must be a list")
    repo = _repository(payload)
    seen: set[str] = set()
    credits = []
    for index, raw in enumerate(commits):
        commit = _object(raw, f"push: commits[{index}]")
        sha = commit.get("id")
        if not isinstance(sha, str) or not sha.strip() or len(sha) > 100:
            raise PayloadError(f"push: commits[{index}].id must be a commit id")
        sha = sha.strip().lower()
        if sha in seen:
            continue
        seen.add(sha)
        author = _object(commit.get("author", {}), f"push: commits[{index}].author")
        username = author.get("username")
        if username is None or username == "":
            # The author's e-mail is not linked to a GitHub account: nobody to credit.
            continue
        login = _login(username, f"push: commits[{index}].author.username")
        url = commit.get("url") if isinstance(commit.get("url"), str) else None
        credits.append(
            Credit(
                login=login,
                amount=POINTS_PER_COMMIT,
                kind="commit",
                source_key=f"commit:{sha}",
                reason=f"commit {sha[:7]} to {repo}",
                url=url,
            )
        )
    return credits


def _issues(payload: dict[str, Any]) -> Outcome:
    action = payload.get("action")
    if action != "closed":
        return Outcome(ignored=f"issue {action!s}, not closed")
    issue = _object(payload.get("issue"), "issues: issue")
    state_reason = issue.get("state_reason")
    if state_reason != "completed":
        return Outcome(ignored=f"issue closed as {state_reason!s}, not completed")
    sender = _object(payload.get("sender"), "issues: sender")
    login = _login(sender.get("login"), "issues: sender.login")
    repo = _repository(payload)
    number = issue.get("number")
    issue_id = issue.get("id")
    if isinstance(issue_id, int) and not isinstance(issue_id, bool):
        key = f"issue:{issue_id}"
    elif isinstance(number, int) and repo != "unknown repository":
        key = f"issue:{repo.lower()}#{number}"
    else:
        raise PayloadError(
            "issues: issue.id (or repository.full_name and issue.number) is required"
        )
    url = issue.get("html_url") if isinstance(issue.get("html_url"), str) else None
    return Outcome(
        credits=[
            Credit(
                login=login,
                amount=POINTS_PER_ISSUE,
                kind="issue",
                source_key=key,
                reason=f"closed issue {repo}#{number}"
                if number is not None
                else f"closed issue in {repo}",
                url=url,
            )
        ]
    )
