-- Segments defined by a filter instead of a plugin: `plugin_id` and `segment_key` may be
-- empty when `filter` (the JSON filter) is given, `as_of` evaluates it on a past day, and
-- `updated_at` tells a definition changed since its last refresh.
ALTER TABLE segments
    ALTER COLUMN plugin_id DROP NOT NULL,
    ALTER COLUMN segment_key DROP NOT NULL,
    ADD COLUMN filter TEXT,
    ADD COLUMN as_of DATE,
    ADD COLUMN updated_at TIMESTAMPTZ;
UPDATE segments SET updated_at = created_at;
ALTER TABLE segments
    ALTER COLUMN updated_at SET NOT NULL,
    -- A plugin and its key, or a filter.
    ADD CONSTRAINT segments_plugin_has_key CHECK ((plugin_id IS NULL) = (segment_key IS NULL)),
    ADD CONSTRAINT segments_plugin_or_filter CHECK ((plugin_id IS NULL) <> (filter IS NULL));
