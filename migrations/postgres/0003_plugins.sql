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
    config          JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE plugin_versions (
    plugin_id            TEXT NOT NULL REFERENCES plugins (id),
    version              TEXT NOT NULL,
    manifest             JSONB NOT NULL,
    api_version          TEXT NOT NULL,
    sha256               TEXT NOT NULL,
    size_bytes           BIGINT NOT NULL,
    component            BYTEA NOT NULL,
    compiled             BYTEA NOT NULL,
    pii_granted          BOOLEAN NOT NULL,
    uploaded_by          TEXT NOT NULL,
    uploaded_at          TIMESTAMPTZ NOT NULL,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (plugin_id, version)
);

-- Uploads, enables, disables, rollbacks, grants and circuit-breaker trips, in order.
CREATE TABLE plugin_events (
    id        BIGSERIAL PRIMARY KEY,
    plugin_id TEXT NOT NULL,
    version   TEXT,
    action    TEXT NOT NULL,
    detail    TEXT,
    actor     TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX plugin_events_by_plugin ON plugin_events (plugin_id, id);

-- Failed batches: the cause and the message, per plugin version.
CREATE TABLE plugin_errors (
    id        BIGSERIAL PRIMARY KEY,
    plugin_id TEXT NOT NULL,
    version   TEXT NOT NULL,
    cause     TEXT NOT NULL,
    message   TEXT NOT NULL,
    records   BIGINT NOT NULL,
    at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX plugin_errors_by_plugin ON plugin_errors (plugin_id, id);

CREATE TABLE segments (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    description    TEXT,
    plugin_id      TEXT NOT NULL REFERENCES plugins (id),
    -- A pinned version; NULL follows the plugin's active version.
    plugin_version TEXT,
    segment_key    TEXT NOT NULL,
    size           BIGINT,
    refreshed_at   TIMESTAMPTZ,
    created_by     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE segment_members (
    segment_id    BIGINT NOT NULL REFERENCES segments (id),
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id),
    PRIMARY KEY (segment_id, subscriber_id)
);
CREATE INDEX segment_members_subscriber ON segment_members (subscriber_id);

-- Each refresh: a job with progress while it runs, the size history once done.
CREATE TABLE segment_refreshes (
    id             BIGSERIAL PRIMARY KEY,
    segment_id     BIGINT NOT NULL REFERENCES segments (id),
    state          TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    plugin_version TEXT NOT NULL,
    processed      BIGINT NOT NULL DEFAULT 0,
    total          BIGINT NOT NULL,
    size           BIGINT,
    failed_records BIGINT NOT NULL DEFAULT 0,
    error          TEXT,
    started_by     TEXT NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    -- Moves with every batch; a running refresh that stops moving was abandoned (its host
    -- stopped) and may be taken over.
    updated_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ
);
CREATE INDEX segment_refreshes_by_segment ON segment_refreshes (segment_id, id);
-- At most one refresh of a segment runs at a time.
CREATE UNIQUE INDEX segment_refreshes_running ON segment_refreshes (segment_id) WHERE state = 'running';
