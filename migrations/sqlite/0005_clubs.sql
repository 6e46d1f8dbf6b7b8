-- Reader clubs: their tiers (kept as the JSON definition staff gave), who holds which tier
-- and why, the history of moves between tiers, staff overrides, recomputation jobs, and club
-- events with their invitations.

CREATE TABLE clubs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    code        TEXT NOT NULL UNIQUE,
    definition  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- One row per reader holding a tier; a reader in no tier has no row.
CREATE TABLE club_memberships (
    club_id       INTEGER NOT NULL REFERENCES clubs (id),
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    tier          TEXT NOT NULL,
    -- The first day in this tier, and in the club.
    tier_since    TEXT NOT NULL,
    member_since  TEXT NOT NULL,
    because       TEXT NOT NULL,
    overridden    BOOLEAN NOT NULL,
    evaluated_at  TEXT NOT NULL,
    PRIMARY KEY (club_id, subscriber_id)
);
CREATE INDEX club_memberships_by_subscriber ON club_memberships (subscriber_id);
CREATE INDEX club_memberships_by_tier ON club_memberships (club_id, tier);

CREATE TABLE tier_changes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    club_id       INTEGER NOT NULL REFERENCES clubs (id),
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    move          TEXT NOT NULL CHECK (move IN ('joined', 'promoted', 'demoted', 'left')),
    from_tier     TEXT,
    to_tier       TEXT,
    because       TEXT NOT NULL,
    by_name       TEXT NOT NULL,
    on_day        TEXT NOT NULL,
    at            TEXT NOT NULL
);
CREATE INDEX tier_changes_by_subscriber ON tier_changes (subscriber_id, at);
CREATE INDEX tier_changes_by_club ON tier_changes (club_id, at);

CREATE TABLE tier_overrides (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    club_id       INTEGER NOT NULL REFERENCES clubs (id),
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    tier          TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('grant', 'hold')),
    reason        TEXT NOT NULL,
    -- The last day it applies.
    expires       TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    ended_at      TEXT,
    ended_by      TEXT
);
-- At most one override of a reader per club is in force.
CREATE UNIQUE INDEX tier_overrides_in_force ON tier_overrides (club_id, subscriber_id)
    WHERE ended_at IS NULL;
CREATE INDEX tier_overrides_by_subscriber ON tier_overrides (subscriber_id);

CREATE TABLE club_recomputes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    club_id     INTEGER NOT NULL REFERENCES clubs (id),
    state       TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    total       INTEGER NOT NULL,
    processed   INTEGER NOT NULL DEFAULT 0,
    joined      INTEGER NOT NULL DEFAULT 0,
    promoted    INTEGER NOT NULL DEFAULT 0,
    demoted     INTEGER NOT NULL DEFAULT 0,
    left_club   INTEGER NOT NULL DEFAULT 0,
    -- Readers left as they were because a plugin their rules name gave no verdict.
    undecided   INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    started_by  TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    -- Moves with every batch; a running job that stops moving was abandoned.
    updated_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX club_recomputes_by_club ON club_recomputes (club_id, id);
CREATE UNIQUE INDEX club_recomputes_running ON club_recomputes (club_id) WHERE state = 'running';

CREATE TABLE club_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    club_id        INTEGER NOT NULL REFERENCES clubs (id),
    title          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    starts_at      TEXT NOT NULL,
    place          TEXT NOT NULL,
    capacity       INTEGER NOT NULL CHECK (capacity > 0),
    eligible_tiers TEXT NOT NULL,
    description    TEXT,
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX club_events_by_club ON club_events (club_id, starts_at);

CREATE TABLE event_invitations (
    event_id      INTEGER NOT NULL REFERENCES club_events (id),
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    state         TEXT NOT NULL
        CHECK (state IN ('invited', 'accepted', 'waitlisted', 'declined', 'attended')),
    -- Order on the waitlist; empty unless waitlisted.
    position      INTEGER,
    invited_at    TEXT NOT NULL,
    answered_at   TEXT,
    checked_in_at TEXT,
    PRIMARY KEY (event_id, subscriber_id)
);
CREATE INDEX event_invitations_by_subscriber ON event_invitations (subscriber_id);
CREATE INDEX event_invitations_by_state ON event_invitations (event_id, state, position);
