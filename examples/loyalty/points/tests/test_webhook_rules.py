"""Signature verification and crediting rules, without a database."""

import json

import pytest
from support import issue_payload, push_payload, sha, sign

from points.webhooks import (
    POINTS_PER_COMMIT,
    POINTS_PER_ISSUE,
    PayloadError,
    credits_for,
    parse_payload,
    signature_valid,
)

SECRET = b"s3cret"


class TestSignature:
    body = b'{"zen": "Keep it logically awesome."}'

    def test_valid(self):
        assert signature_valid(SECRET, self.body, sign(self.body, "s3cret"))

    def test_known_vector(self):
        # GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!"
        assert signature_valid(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "sha256=",
            "sha1=" + "0" * 40,
            "sha256=" + "0" * 64,
            "garbage",
            "sha256=é",
        ],
    )
    def test_invalid(self, header):
        assert not signature_valid(SECRET, self.body, header)

    def test_other_secret(self):
        assert not signature_valid(SECRET, self.body, sign(self.body, "not the secret"))

    def test_other_body(self):
        assert not signature_valid(SECRET, self.body + b" ", sign(self.body, "s3cret"))

    def test_uppercase_prefix_is_not_accepted(self):
        digest = sign(self.body, "s3cret").split("=", 1)[1]
        assert not signature_valid(SECRET, self.body, "SHA256=" + digest)


class TestParse:
    def test_json(self):
        assert parse_payload(b'{"a": 1}', "application/json") == {"a": 1}

    def test_form_encoded(self):
        body = b"payload=%7B%22a%22%3A+1%7D"
        assert parse_payload(body, "application/x-www-form-urlencoded") == {"a": 1}

    @pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe", b""])
    def test_rejects(self, body):
        with pytest.raises(PayloadError):
            parse_payload(body, "application/json")

    def test_form_without_payload(self):
        with pytest.raises(PayloadError, match="payload field"):
            parse_payload(b"other=1", "application/x-www-form-urlencoded")


class TestPush:
    def test_one_point_per_distinct_commit_to_its_author(self):
        payload = push_payload((sha(1), "alice"), (sha(2), "bob"), (sha(3), "alice"))
        credits = credits_for("push", payload).credits
        assert [(c.login, c.amount, c.kind) for c in credits] == [
            ("alice", POINTS_PER_COMMIT, "commit"),
            ("bob", POINTS_PER_COMMIT, "commit"),
            ("alice", POINTS_PER_COMMIT, "commit"),
        ]
        assert [c.source_key for c in credits] == [f"commit:{sha(n)}" for n in (1, 2, 3)]
        assert credits[0].reason == f"commit {sha(1)[:7]} to pycon/sprints"
        assert credits[0].url == f"https://github.com/pycon/sprints/commit/{sha(1)}"

    def test_repeated_commit_in_one_push_counts_once(self):
        payload = push_payload((sha(1), "alice"), (sha(1).upper(), "alice"))
        assert len(credits_for("push", payload).credits) == 1

    def test_author_without_github_account_earns_nothing(self):
        payload = push_payload((sha(1), None), (sha(2), "bob"))
        assert [c.login for c in credits_for("push", payload).credits] == ["bob"]

    def test_empty_push(self):
        assert credits_for("push", push_payload()).credits == []

    def test_branch_deletion_has_no_commits(self):
        assert credits_for("push", {"ref": "refs/heads/x", "deleted": True}).credits == []

    @pytest.mark.parametrize(
        "commits",
        [
            "nope",
            [1],
            [{"author": {"username": "alice"}}],
            [{"id": "", "author": {"username": "alice"}}],
            [{"id": "abc", "author": "alice"}],
            [{"id": "abc", "author": {"username": 42}}],
        ],
    )
    def test_malformed(self, commits):
        with pytest.raises(PayloadError):
            credits_for("push", {"commits": commits})


class TestIssues:
    def test_completed_issue_credits_the_sender(self):
        (credit,) = credits_for("issues", issue_payload("carol", 1001, number=7)).credits
        assert (credit.login, credit.amount, credit.kind) == ("carol", POINTS_PER_ISSUE, "issue")
        assert credit.source_key == "issue:1001"
        assert credit.reason == "closed issue pycon/sprints#7"

    @pytest.mark.parametrize("reason", ["not_planned", "duplicate", None, "reopened"])
    def test_closed_otherwise_earns_nothing(self, reason):
        outcome = credits_for("issues", issue_payload("carol", 1, state_reason=reason))
        assert outcome.credits == [] and "not completed" in outcome.ignored

    @pytest.mark.parametrize("action", ["opened", "reopened", "edited", "labeled"])
    def test_other_actions_earn_nothing(self, action):
        outcome = credits_for("issues", issue_payload("carol", 1, action=action))
        assert outcome.credits == [] and outcome.ignored

    def test_key_falls_back_to_repository_and_number(self):
        payload = issue_payload("carol", 1, number=12)
        del payload["issue"]["id"]
        (credit,) = credits_for("issues", payload).credits
        assert credit.source_key == "issue:pycon/sprints#12"

    def test_missing_sender(self):
        payload = issue_payload("carol", 1)
        del payload["sender"]
        with pytest.raises(PayloadError, match="sender"):
            credits_for("issues", payload)


@pytest.mark.parametrize("event", ["ping", "star", "pull_request", "release"])
def test_other_events_are_ignored(event):
    outcome = credits_for(event, json.loads('{"action": "created"}'))
    assert outcome.credits == [] and outcome.ignored
