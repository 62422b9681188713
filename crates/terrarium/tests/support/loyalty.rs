//! The loyalty program (`examples/loyalty`) seen from outside, through its gateway: GitHub's
//! signed webhooks, contributors' balances and redemptions, and the promises every way of
//! running it must keep (compose, Swarm).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Response, http, http_with};

/// The gateway of a running loyalty system and the webhook secret it was given.
pub struct Gateway {
    /// The published port on 127.0.0.1.
    pub port: u16,
    /// `LOYALTY_WEBHOOK_SECRET`.
    pub secret: String,
}

impl Gateway {
    /// GitHub's `X-Hub-Signature-256` for `body`.
    pub fn signature(&self, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).expect("hmac key");
        mac.update(body.as_bytes());
        let digest: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={digest}")
    }

    /// A webhook delivery; `signature` overrides the right one (empty: none at all).
    pub fn webhook(
        &self,
        event: &str,
        delivery: &str,
        body: &str,
        signature: Option<&str>,
    ) -> Response {
        let signed = self.signature(body);
        let mut headers = vec![("X-GitHub-Event", event), ("X-GitHub-Delivery", delivery)];
        let signature = signature.unwrap_or(&signed);
        if !signature.is_empty() {
            headers.push(("X-Hub-Signature-256", signature));
        }
        http_with("POST", self.port, "/webhooks/github", &headers, Some(body)).expect("webhook")
    }

    /// A contributor's balance.
    pub fn balance(&self, login: &str) -> i64 {
        let response = http(
            "GET",
            self.port,
            &format!("/api/contributors/{login}"),
            None,
        )
        .expect("balance");
        assert_eq!(response.status, 200, "{}", response.body);
        let json: serde_json::Value = serde_json::from_str(&response.body).expect("json");
        json["balance"].as_i64().expect("balance")
    }

    /// Redeem a reward.
    pub fn redeem(&self, login: &str, reward: &str) -> Response {
        let body = format!(r#"{{"login": "{login}", "reward": "{reward}"}}"#);
        http("POST", self.port, "/api/redemptions", Some(&body)).expect("redeem")
    }

    /// Credit `points` to `login` with one push of that many distinct commits.
    pub fn credit(&self, login: &str, points: usize, delivery: &str) {
        let commits: Vec<String> = (0..points)
            .map(|i| format!(r#"{{"id": "{delivery}-{i}", "author": {{"username": "{login}"}}}}"#))
            .collect();
        let body = format!(
            r#"{{"repository": {{"full_name": "pycon/sprints"}}, "commits": [{}]}}"#,
            commits.join(", ")
        );
        let response = self.webhook("push", delivery, &body, None);
        assert_eq!(response.status, 200, "{}", response.body);
    }
}

/// An `issues` webhook body: issue `id` closed by `login` with `reason`.
pub fn issue_closed(id: u64, login: &str, reason: &str) -> String {
    format!(
        r#"{{"action": "closed", "issue": {{"id": {id}, "number": {id}, "state_reason": "{reason}"}}, "sender": {{"login": "{login}"}}, "repository": {{"full_name": "pycon/sprints"}}}}"#
    )
}

/// What the program promises, on a fresh system: commits and completed issues are credited
/// once, replays and forged signatures change nothing, `/internal/` is not routed, and 20
/// concurrent redemptions against a balance that covers 4 give exactly 4 vouchers. Leaves
/// alice 2, bob 1, carol 0.
pub fn check_promises(system: &Gateway) {
    // A push credits one point per distinct commit to its author.
    let push = r#"{"repository": {"full_name": "pycon/sprints"}, "commits": [
        {"id": "a1", "author": {"username": "alice"}},
        {"id": "a2", "author": {"username": "alice"}},
        {"id": "a2", "author": {"username": "alice"}},
        {"id": "b1", "author": {"username": "bob"}}]}"#;
    let response = system.webhook("push", "delivery-1", push, None);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!((system.balance("alice"), system.balance("bob")), (2, 1));

    // A completed issue credits 5 to whoever closed it; not_planned credits nothing.
    let closed = |id: u64, login: &str, reason: &str, delivery: &str| -> u16 {
        system
            .webhook("issues", delivery, &issue_closed(id, login, reason), None)
            .status
    };
    assert_eq!(closed(1001, "alice", "completed", "delivery-2"), 200);
    assert_eq!(closed(1002, "bob", "not_planned", "delivery-3"), 200);
    assert_eq!((system.balance("alice"), system.balance("bob")), (7, 1));

    // Replays and bad signatures change nothing.
    let replay = system.webhook("push", "delivery-1", push, None);
    assert_eq!(replay.status, 200);
    assert!(replay.body.contains("duplicate"), "{}", replay.body);
    assert_eq!(
        system.webhook("push", "delivery-4", push, None).status,
        200,
        "same commits, new delivery"
    );
    let forged = system.webhook(
        "issues",
        "delivery-5",
        &issue_closed(1003, "mallory", "completed"),
        Some("sha256=0000"),
    );
    assert_eq!(forged.status, 401);
    let unsigned = system.webhook(
        "issues",
        "delivery-6",
        &issue_closed(1004, "mallory", "completed"),
        Some(""),
    );
    assert_eq!(unsigned.status, 401);
    assert_eq!((system.balance("alice"), system.balance("bob")), (7, 1));
    assert_eq!(
        http("GET", system.port, "/api/contributors/mallory", None)
            .expect("get")
            .status,
        404
    );

    // Redeem a coffee; too little for bob; unknown reward and contributor.
    let coffee = system.redeem("alice", "coffee");
    assert_eq!(coffee.status, 201, "{}", coffee.body);
    let voucher: serde_json::Value = serde_json::from_str(&coffee.body).expect("json");
    assert!(
        voucher["voucher"]
            .as_str()
            .is_some_and(|v| v.starts_with("COFFEE-")),
        "{}",
        coffee.body
    );
    assert_eq!(voucher["balance"], 2);
    assert_eq!(system.balance("alice"), 2);
    assert_eq!(system.redeem("bob", "coffee").status, 409);
    assert_eq!(system.redeem("alice", "yacht").status, 404);
    assert_eq!(system.redeem("nobody", "sticker").status, 404);
    let internal = http(
        "POST",
        system.port,
        "/internal/contributors/alice/debits",
        Some(r#"{"amount": 1}"#),
    )
    .expect("internal");
    assert_eq!(
        internal.status, 404,
        "the gateway does not route /internal/"
    );

    // 20 redemptions at once against a balance that covers 4: exactly 4 succeed.
    for id in 2001..2005 {
        assert_eq!(
            closed(id, "carol", "completed", &format!("delivery-{id}")),
            200
        );
    }
    assert_eq!(system.balance("carol"), 20);
    let port = system.port;
    let statuses: Vec<u16> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                http(
                    "POST",
                    port,
                    "/api/redemptions",
                    Some(r#"{"login": "carol", "reward": "coffee"}"#),
                )
                .map(|r| r.status)
                .unwrap_or(0)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        16,
        "{statuses:?}"
    );
    assert_eq!(system.balance("carol"), 0);
}
