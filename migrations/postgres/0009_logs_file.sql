-- A version's run of failing batches with no success between; no row means none. (On SQLite
-- the streaks live in the logs file with the audit log, away from the tables cards are read
-- from; here everything stays in the one database.)
CREATE TABLE plugin_streaks (
    plugin_id            TEXT NOT NULL,
    version              TEXT NOT NULL,
    consecutive_failures BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, version)
);
INSERT INTO plugin_streaks (plugin_id, version, consecutive_failures)
    SELECT plugin_id, version, consecutive_failures FROM plugin_versions
    WHERE consecutive_failures > 0;
ALTER TABLE plugin_versions DROP COLUMN consecutive_failures;
