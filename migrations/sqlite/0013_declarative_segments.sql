-- Segments defined by a filter instead of a plugin: `plugin_id` and `segment_key` may be
-- empty when `filter` (the JSON filter) is given, `as_of` evaluates it on a past day, and
-- `updated_at` tells a definition changed since its last refresh.
--
-- SQLite cannot drop a NOT NULL, so the table is made anew. Migrations run in a transaction,
-- where foreign keys cannot be switched off, so the members move to a new table too: the old
-- tables are dropped child first (no reference breaks), and renaming the new segments table
-- carries the new members' reference over to it. Every row keeps its id.

CREATE TABLE segments_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    description    TEXT,
    plugin_id      TEXT REFERENCES plugins (id),
    -- A pinned version; NULL follows the plugin's active version.
    plugin_version TEXT,
    segment_key    TEXT,
    filter         TEXT,
    as_of          TEXT,
    size           INTEGER,
    refreshed_at   TEXT,
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    -- A plugin and its key, or a filter.
    CHECK ((plugin_id IS NULL) = (segment_key IS NULL)),
    CHECK ((plugin_id IS NULL) <> (filter IS NULL))
);
INSERT INTO segments_new (id, name, description, plugin_id, plugin_version, segment_key,
                          size, refreshed_at, created_by, created_at, updated_at)
SELECT id, name, description, plugin_id, plugin_version, segment_key, size, refreshed_at,
       created_by, created_at, created_at
FROM segments;
-- Ids of deleted segments stay unused: a refresh job names its segment by id.
DELETE FROM sqlite_sequence WHERE name = 'segments_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'segments_new', seq FROM sqlite_sequence WHERE name = 'segments';

CREATE TABLE segment_members_new (
    segment_id    INTEGER NOT NULL REFERENCES segments_new (id),
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    PRIMARY KEY (segment_id, subscriber_id)
) WITHOUT ROWID;
INSERT INTO segment_members_new (segment_id, subscriber_id)
SELECT segment_id, subscriber_id FROM segment_members;

DROP TABLE segment_members;
DROP TABLE segments;
ALTER TABLE segments_new RENAME TO segments;
ALTER TABLE segment_members_new RENAME TO segment_members;
CREATE INDEX segment_members_subscriber ON segment_members (subscriber_id);
