-- The ledger. Every rule that protects money is a constraint here, not only code in Python:
--   * a balance never goes below zero                       (contributors.balance CHECK)
--   * a commit, an issue or a debit is booked at most once   (ledger_entries.source_key UNIQUE)
--   * a webhook delivery is processed at most once           (deliveries PRIMARY KEY)
--   * an idempotency key debits at most once                 (debits PRIMARY KEY)

CREATE TABLE contributors (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login      text        NOT NULL CHECK (length(login) BETWEEN 1 AND 100),
    balance    integer     NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- GitHub logins are case-insensitive: one account, one row.
CREATE UNIQUE INDEX contributors_login_key ON contributors (lower(login));

CREATE TABLE deliveries (
    delivery_id text        PRIMARY KEY CHECK (length(delivery_id) BETWEEN 1 AND 200),
    event       text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_entries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contributor_id bigint      NOT NULL REFERENCES contributors (id),
    amount         integer     NOT NULL CHECK (amount <> 0),
    kind           text        NOT NULL CHECK (kind IN ('commit', 'issue', 'debit')),
    -- what was booked: 'commit:<sha>', 'issue:<id>', 'debit:<idempotency key>'
    source_key     text        NOT NULL UNIQUE,
    reason         text        NOT NULL,
    url            text,
    delivery_id    text        REFERENCES deliveries (delivery_id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'debit') = (amount < 0))
);
CREATE INDEX ledger_entries_contributor_idx ON ledger_entries (contributor_id, id DESC);

CREATE TABLE debits (
    idempotency_key text        PRIMARY KEY CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    contributor_id  bigint      NOT NULL REFERENCES contributors (id),
    amount          integer     NOT NULL CHECK (amount > 0),
    reason          text        NOT NULL,
    ledger_entry_id bigint      NOT NULL UNIQUE REFERENCES ledger_entries (id),
    balance_after   integer     NOT NULL CHECK (balance_after >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
