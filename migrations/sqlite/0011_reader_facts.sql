-- The reader pipeline reads the whole readership from `reader_facts`: every live reader's
-- subscriber facts and terms, compactly encoded, a chunk of consecutive sequences a row.
-- Every change to a reader is logged in `reader_changes` by the writer's own transaction (the
-- triggers below); a pass of the pipeline first brings the chunks of logged readers up to
-- date and deletes the log rows it read, and reads a reader still logged from its tables.

CREATE TABLE reader_facts (
    chunk INTEGER PRIMARY KEY,
    body  BLOB NOT NULL
);

-- AUTOINCREMENT: an id is never handed out twice, so a pass deletes only rows it has read.
CREATE TABLE reader_changes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id INTEGER NOT NULL
);

-- Who is bringing the chunks up to date, until when: one pass at a time, on any host.
CREATE TABLE reader_facts_lease (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT,
    until  TEXT
);
INSERT INTO reader_facts_lease (id) VALUES (1);

-- The readers already stored are all to be read into chunks.
INSERT INTO reader_changes (subscriber_id) SELECT id FROM subscribers ORDER BY id;

CREATE TRIGGER reader_changes_subscriber_insert AFTER INSERT ON subscribers
BEGIN
    INSERT INTO reader_changes (subscriber_id) VALUES (NEW.id);
END;
CREATE TRIGGER reader_changes_subscriber_update AFTER UPDATE ON subscribers
BEGIN
    INSERT INTO reader_changes (subscriber_id) VALUES (NEW.id);
END;
CREATE TRIGGER reader_changes_subscriber_delete AFTER DELETE ON subscribers
BEGIN
    INSERT INTO reader_changes (subscriber_id) VALUES (OLD.id);
END;
CREATE TRIGGER reader_changes_term_insert AFTER INSERT ON terms
BEGIN
    INSERT INTO reader_changes (subscriber_id) VALUES (NEW.subscriber_id);
END;
CREATE TRIGGER reader_changes_term_update AFTER UPDATE ON terms
BEGIN
    INSERT INTO reader_changes (subscriber_id) VALUES (NEW.subscriber_id);
    INSERT INTO reader_changes (subscriber_id)
        SELECT OLD.subscriber_id WHERE OLD.subscriber_id <> NEW.subscriber_id;
END;
CREATE TRIGGER reader_changes_term_delete AFTER DELETE ON terms
BEGIN
    INSERT INTO reader_changes (subscriber_id) VALUES (OLD.subscriber_id);
END;
