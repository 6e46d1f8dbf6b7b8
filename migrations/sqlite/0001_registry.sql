-- The service foundation and the subscriber registry.

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'staff', 'advertiser')),
    token_hash   TEXT NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);

CREATE TABLE staff (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    email      TEXT,
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TEXT NOT NULL
);

CREATE TABLE subscribers (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                    TEXT NOT NULL,
    status                  TEXT NOT NULL,
    display_name            TEXT NOT NULL,
    profile                 TEXT NOT NULL,
    consents                TEXT NOT NULL,
    postal_code             TEXT,
    city                    TEXT,
    region                  TEXT,
    country                 TEXT,
    birth_year              INTEGER,
    relationship_manager_id INTEGER REFERENCES staff (id),
    relationship_level      TEXT NOT NULL,
    merged_into             INTEGER REFERENCES subscribers (id),
    version                 INTEGER NOT NULL,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
-- Subscriber numbers start at seven digits: sequence 100000 plus a check digit.
INSERT INTO sqlite_sequence (name, seq) VALUES ('subscribers', 99999);
CREATE INDEX subscribers_status ON subscribers (status, id);
CREATE INDEX subscribers_postal_code ON subscribers (postal_code, id);
CREATE INDEX subscribers_region ON subscribers (region, id);
CREATE INDEX subscribers_manager ON subscribers (relationship_manager_id, id);

CREATE TABLE search_terms (
    kind          TEXT NOT NULL,
    term          TEXT NOT NULL,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    PRIMARY KEY (kind, term, subscriber_id)
) WITHOUT ROWID;
CREATE INDEX search_terms_subscriber ON search_terms (subscriber_id);

CREATE TABLE consent_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    purpose       TEXT NOT NULL,
    granted       BOOLEAN NOT NULL,
    channel       TEXT NOT NULL,
    note          TEXT,
    recorded_at   TEXT NOT NULL,
    recorded_by   TEXT NOT NULL
);
CREATE INDEX consent_events_subscriber ON consent_events (subscriber_id, id);

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    actor_key_id  INTEGER,
    actor         TEXT NOT NULL,
    role          TEXT NOT NULL,
    action        TEXT NOT NULL,
    subscriber_id INTEGER,
    request_id    TEXT,
    detail        TEXT NOT NULL
);
CREATE INDEX audit_log_subscriber ON audit_log (subscriber_id, id);
