-- Renewal history: publications and price lists, orders, terms and delivery holds.

CREATE TABLE publications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    code       TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE price_lists (
    publication_id INTEGER NOT NULL REFERENCES publications (id),
    effective_from TEXT NOT NULL,
    prices         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    PRIMARY KEY (publication_id, effective_from)
);

-- One paid step (a renewal, a new subscription, an auto-renewal, an import) creating terms.
CREATE TABLE orders (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers (id),
    kind            TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    request_hash    TEXT,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL
);
CREATE INDEX orders_by_subscriber ON orders (subscriber_id);

CREATE TABLE terms (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id       INTEGER NOT NULL REFERENCES subscribers (id),
    publication_id      INTEGER NOT NULL REFERENCES publications (id),
    order_id            INTEGER REFERENCES orders (id),
    format              TEXT NOT NULL,
    months              INTEGER NOT NULL,
    start_date          TEXT NOT NULL,
    end_date            TEXT NOT NULL,
    extension_days      INTEGER NOT NULL DEFAULT 0,
    currency            TEXT NOT NULL,
    list_price          INTEGER NOT NULL,
    discounts           TEXT NOT NULL,
    price_paid          INTEGER NOT NULL,
    channel             TEXT NOT NULL,
    payment_method      TEXT NOT NULL,
    auto_renew          BOOLEAN NOT NULL,
    -- A term is renewed at most once: two racing renewals cannot both continue it.
    renews_term_id      INTEGER UNIQUE REFERENCES terms (id),
    cancelled_effective TEXT,
    cancel_reason       TEXT,
    refund              INTEGER,
    cancelled_at        TEXT,
    cancelled_by        TEXT,
    created_at          TEXT NOT NULL
);
CREATE INDEX terms_by_subscriber ON terms (subscriber_id, publication_id, start_date);
CREATE INDEX terms_auto_renew_due ON terms (end_date)
    WHERE auto_renew AND cancelled_effective IS NULL;

CREATE TABLE holds (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    term_id       INTEGER NOT NULL REFERENCES terms (id),
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    from_date     TEXT NOT NULL,
    to_date       TEXT NOT NULL,
    reason        TEXT,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL
);
CREATE INDEX holds_by_term ON holds (term_id);

-- The publisher's own id of an imported reader, so later imports find the same record.
ALTER TABLE subscribers ADD COLUMN legacy_id TEXT;
CREATE UNIQUE INDEX subscribers_by_legacy_id ON subscribers (legacy_id) WHERE legacy_id IS NOT NULL;
