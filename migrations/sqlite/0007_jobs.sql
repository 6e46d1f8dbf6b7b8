-- One jobs table for every piece of background work, leased through the database, with a
-- row per claim so that who ran a job, and when, can be shown. The refresh and recomputation
-- histories move into it.

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    -- What the job works on (e.g. `segment:12`), '' for the whole readership: one job of a
    -- kind per subject is queued or running at a time.
    subject          TEXT NOT NULL DEFAULT '',
    -- The period of a scheduled run (e.g. `2026-12-02`): one job per kind, subject and period.
    period           TEXT,
    arguments        TEXT NOT NULL DEFAULT '{}',
    state            TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    processed        INTEGER NOT NULL DEFAULT 0,
    total            INTEGER,
    -- Claims so far; the current claim's number is the lease's fencing token.
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_host       TEXT,
    lease_expires_at TEXT,
    heartbeat_at     TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    result           TEXT,
    error            TEXT,
    created_by       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    updated_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX jobs_one_active ON jobs (kind, subject) WHERE state IN ('queued', 'running');
CREATE UNIQUE INDEX jobs_one_per_period ON jobs (kind, subject, period) WHERE period IS NOT NULL;
CREATE INDEX jobs_claimable ON jobs (state, id);
CREATE INDEX jobs_by_subject ON jobs (kind, subject, id);

-- Every claim of a job: the host, when it claimed and last heartbeated, and how it ended
-- (`succeeded`, `failed`, `cancelled`, `released` at shutdown, `lapsed` when another host
-- took over a lease that ran out).
CREATE TABLE job_runs (
    job_id            INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt           INTEGER NOT NULL,
    host              TEXT NOT NULL,
    claimed_at        TEXT NOT NULL,
    last_heartbeat_at TEXT NOT NULL,
    ended_at          TEXT,
    outcome           TEXT,
    PRIMARY KEY (job_id, attempt)
);

INSERT INTO jobs (kind, subject, arguments, state, processed, total, attempts, result, error,
                  created_by, created_at, started_at, finished_at, updated_at)
SELECT 'segment_refresh', 'segment:' || r.segment_id,
       json_object('segment_id', r.segment_id, 'plugin_version', r.plugin_version),
       CASE r.state WHEN 'done' THEN 'succeeded' ELSE 'failed' END,
       r.processed, r.total, 1,
       json_object('size', r.size, 'failed_records', r.failed_records),
       CASE r.state WHEN 'running' THEN 'abandoned by a host before the jobs table' ELSE r.error END,
       r.started_by, r.started_at, r.started_at, COALESCE(r.finished_at, r.updated_at), r.updated_at
FROM segment_refreshes r ORDER BY r.id;

INSERT INTO jobs (kind, subject, arguments, state, processed, total, attempts, result, error,
                  created_by, created_at, started_at, finished_at, updated_at)
SELECT 'club_recompute', 'club:' || c.club_id,
       json_object('club_id', c.club_id),
       CASE c.state WHEN 'done' THEN 'succeeded' ELSE 'failed' END,
       c.processed, c.total, 1,
       json_object('processed', c.processed, 'joined', c.joined, 'promoted', c.promoted,
                   'demoted', c.demoted, 'left', c.left_club, 'undecided', c.undecided),
       CASE c.state WHEN 'running' THEN 'abandoned by a host before the jobs table' ELSE c.error END,
       c.started_by, c.started_at, c.started_at, COALESCE(c.finished_at, c.updated_at), c.updated_at
FROM club_recomputes c ORDER BY c.id;

DROP TABLE segment_refreshes;
DROP TABLE club_recomputes;
