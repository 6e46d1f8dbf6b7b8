-- Imports over HTTP run as jobs: the uploaded file is kept in the database while its job is
-- queued or running, so that any host can run it (or take it over), and each rejected row is
-- kept with its job, to be listed page by page.

-- The file of an import job, in chunks read back in `seq` order.
CREATE TABLE import_files (
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    bytes  BLOB NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- A file holds readers' personal data: it goes as soon as its job has finished, however it
-- finished (succeeded, failed, cancelled while running or while queued, or abandoned).
CREATE TRIGGER import_files_end_with_their_job
AFTER UPDATE OF state ON jobs
WHEN NEW.state IN ('succeeded', 'failed', 'cancelled')
BEGIN
    DELETE FROM import_files WHERE job_id = NEW.id;
END;

-- The rows an import job rejected in its latest attempt: the line and the reason only (no
-- personal value: a reason names the column and quotes only values that are not personal).
CREATE TABLE import_rejections (
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    line   INTEGER NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (job_id, line)
);
