-- The append-only logs move to their own file, attached to every connection as `logs`
-- (store/sqlite.rs): the audit log, the plugins' failure records and their failing streaks.
-- They are written on nearly every request, and a commit to the readers' file empties each
-- reader's page cache and grows the WAL that checkpoints copy; commits to this file do
-- neither to the tables the cards are read from. Unqualified names find these tables here.
CREATE TABLE logs.audit_log (
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
INSERT INTO logs.audit_log (id, at, actor_key_id, actor, role, action, subscriber_id, request_id, detail)
    SELECT id, at, actor_key_id, actor, role, action, subscriber_id, request_id, detail
    FROM main.audit_log;
DROP TABLE main.audit_log;
CREATE INDEX logs.audit_log_subscriber ON audit_log (subscriber_id, at, id);
CREATE INDEX logs.audit_log_at ON audit_log (at, id);

CREATE TABLE logs.plugin_errors (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    plugin_id TEXT NOT NULL,
    version   TEXT NOT NULL,
    cause     TEXT NOT NULL,
    message   TEXT NOT NULL,
    records   INTEGER NOT NULL,
    at        TEXT NOT NULL
);
INSERT INTO logs.plugin_errors (id, plugin_id, version, cause, message, records, at)
    SELECT id, plugin_id, version, cause, message, records, at FROM main.plugin_errors;
DROP TABLE main.plugin_errors;
CREATE INDEX logs.plugin_errors_by_plugin ON plugin_errors (plugin_id, id);

-- A version's run of failing batches with no success between; no row means none.
CREATE TABLE logs.plugin_streaks (
    plugin_id            TEXT NOT NULL,
    version              TEXT NOT NULL,
    consecutive_failures INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, version)
);
INSERT INTO logs.plugin_streaks (plugin_id, version, consecutive_failures)
    SELECT plugin_id, version, consecutive_failures FROM main.plugin_versions
    WHERE consecutive_failures > 0;
ALTER TABLE main.plugin_versions DROP COLUMN consecutive_failures;
