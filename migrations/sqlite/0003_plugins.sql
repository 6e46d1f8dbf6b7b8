-- The plugin host: uploaded plugin versions, their lifecycle and failures, and the segments
-- plugins define.

CREATE TABLE plugins (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    active_version  TEXT,
    enabled         BOOLEAN NOT NULL DEFAULT FALSE,
    -- Why the plugin is off: a person's reason or the circuit breaker's.
    disabled_reason TEXT,
    -- Installation overrides of the manifest's configuration defaults (JSON object).
    config          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE plugin_versions (
    plugin_id            TEXT NOT NULL REFERENCES plugins (id),
    version              TEXT NOT NULL,
    manifest             TEXT NOT NULL,
    api_version          TEXT NOT NULL,
    sha256               TEXT NOT NULL,
    size_bytes           INTEGER NOT NULL,
    component            BLOB NOT NULL,
    compiled             BLOB NOT NULL,
    pii_granted          BOOLEAN NOT NULL,
    uploaded_by          TEXT NOT NULL,
    uploaded_at          TEXT NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (plugin_id, version)
);

-- Uploads, enables, disables, rollbacks, grants and circuit-breaker trips, in order.
CREATE TABLE plugin_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    plugin_id TEXT NOT NULL,
    version   TEXT,
    action    TEXT NOT NULL,
    detail    TEXT,
    actor     TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX plugin_events_by_plugin ON plugin_events (plugin_id, id);

-- Failed batches: the cause and the message, per plugin version.
CREATE TABLE plugin_errors (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    plugin_id TEXT NOT NULL,
    version   TEXT NOT NULL,
    cause     TEXT NOT NULL,
    message   TEXT NOT NULL,
    records   INTEGER NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX plugin_errors_by_plugin ON plugin_errors (plugin_id, id);

CREATE TABLE segments (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    description    TEXT,
    plugin_id      TEXT NOT NULL REFERENCES plugins (id),
    -- A pinned version; NULL follows the plugin's active version.
    plugin_version TEXT,
    segment_key    TEXT NOT NULL,
    size           INTEGER,
    refreshed_at   TEXT,
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL
);

CREATE TABLE segment_members (
    segment_id    INTEGER NOT NULL REFERENCES segments (id),
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    PRIMARY KEY (segment_id, subscriber_id)
) WITHOUT ROWID;
CREATE INDEX segment_members_subscriber ON segment_members (subscriber_id);

-- Each refresh: a job with progress while it runs, the size history once done.
CREATE TABLE segment_refreshes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_id     INTEGER NOT NULL REFERENCES segments (id),
    state          TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    plugin_version TEXT NOT NULL,
    processed      INTEGER NOT NULL DEFAULT 0,
    total          INTEGER NOT NULL,
    size           INTEGER,
    failed_records INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    started_by     TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    -- Moves with every batch; a running refresh that stops moving was abandoned (its host
    -- stopped) and may be taken over.
    updated_at     TEXT NOT NULL,
    finished_at    TEXT
);
CREATE INDEX segment_refreshes_by_segment ON segment_refreshes (segment_id, id);
-- At most one refresh of a segment runs at a time.
CREATE UNIQUE INDEX segment_refreshes_running ON segment_refreshes (segment_id) WHERE state = 'running';
