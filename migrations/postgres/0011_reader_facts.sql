-- The reader pipeline reads the whole readership from `reader_facts`: every live reader's
-- subscriber facts and terms, compactly encoded, a chunk of consecutive sequences a row.
-- Every change to a reader is logged in `reader_changes` by the writer's own transaction (the
-- triggers below, one row per reader a statement touched); a pass of the pipeline first
-- brings the chunks of logged readers up to date and deletes the log rows it read, and reads
-- a reader still logged from its tables.

CREATE TABLE reader_facts (
    chunk BIGINT PRIMARY KEY,
    body  BYTEA NOT NULL
);

-- Keyed by the reader first, like every table of a reader's rows (see 0008); a pass reads and
-- deletes by `id`.
CREATE TABLE reader_changes (
    id            BIGINT GENERATED ALWAYS AS IDENTITY,
    subscriber_id BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, id)
);
CREATE INDEX reader_changes_id ON reader_changes (id);

-- Who is bringing the chunks up to date, until when: one pass at a time, on any host.
CREATE TABLE reader_facts_lease (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT,
    until  TIMESTAMPTZ
);
INSERT INTO reader_facts_lease (id) VALUES (1);

-- The readers already stored are all to be read into chunks.
INSERT INTO reader_changes (subscriber_id) SELECT id FROM subscribers ORDER BY id;

-- Statement triggers see all the rows a statement wrote at once, so a bulk load logs each
-- reader once a statement instead of once a row. PostgreSQL lets a trigger with transition
-- tables fire on one event only, hence three triggers a table.
CREATE FUNCTION log_subscriber_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO reader_changes (subscriber_id) SELECT id FROM old_rows;
    ELSE
        INSERT INTO reader_changes (subscriber_id) SELECT id FROM new_rows;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION log_term_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO reader_changes (subscriber_id) SELECT DISTINCT subscriber_id FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO reader_changes (subscriber_id) SELECT DISTINCT subscriber_id FROM old_rows;
    ELSE
        INSERT INTO reader_changes (subscriber_id)
            SELECT subscriber_id FROM new_rows UNION SELECT subscriber_id FROM old_rows;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER reader_changes_subscriber_insert AFTER INSERT ON subscribers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION log_subscriber_changes();
CREATE TRIGGER reader_changes_subscriber_update AFTER UPDATE ON subscribers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION log_subscriber_changes();
CREATE TRIGGER reader_changes_subscriber_delete AFTER DELETE ON subscribers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION log_subscriber_changes();
CREATE TRIGGER reader_changes_term_insert AFTER INSERT ON terms
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION log_term_changes();
CREATE TRIGGER reader_changes_term_update AFTER UPDATE ON terms
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_term_changes();
CREATE TRIGGER reader_changes_term_delete AFTER DELETE ON terms
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION log_term_changes();
