-- Interactions with readers (complaints, questions, suggestions, praise), their workflow
-- steps, and the compensations given when resolving them.

CREATE TABLE interactions (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Empty for a contact not (yet) linked to a subscriber.
    subscriber_id            INTEGER REFERENCES subscribers (id),
    contact                  TEXT,
    kind                     TEXT NOT NULL,
    channel                  TEXT NOT NULL,
    category                 TEXT NOT NULL,
    priority                 TEXT NOT NULL,
    text                     TEXT NOT NULL,
    taken_by                 TEXT NOT NULL,
    owner_id                 INTEGER REFERENCES staff (id),
    state                    TEXT NOT NULL,
    opened_at                TEXT NOT NULL,
    respond_by               TEXT,
    resolve_by               TEXT,
    -- The due time the desk must meet next; empty while paused or once resolved.
    next_due                 TEXT,
    responded_at             TEXT,
    resolved_at              TEXT,
    closed_at                TEXT,
    paused_since             TEXT,
    paused_seconds           INTEGER NOT NULL DEFAULT 0,
    clock_started_at         TEXT NOT NULL,
    reopened                 INTEGER NOT NULL DEFAULT 0,
    response_seconds         INTEGER,
    resolution_seconds       INTEGER,
    first_contact_resolution BOOLEAN,
    resolution               TEXT,
    version                  INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX interactions_by_subscriber ON interactions (subscriber_id, opened_at);
CREATE INDEX interactions_by_opened ON interactions (opened_at);
CREATE INDEX interactions_due ON interactions (next_due) WHERE next_due IS NOT NULL;

CREATE TABLE interaction_steps (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    interaction_id INTEGER NOT NULL REFERENCES interactions (id),
    subscriber_id  INTEGER REFERENCES subscribers (id),
    action         TEXT NOT NULL,
    note           TEXT,
    detail         TEXT NOT NULL,
    at             TEXT NOT NULL,
    by_name        TEXT NOT NULL
);
CREATE INDEX interaction_steps_by_interaction ON interaction_steps (interaction_id, id);
CREATE INDEX interaction_steps_by_subscriber ON interaction_steps (subscriber_id);

-- Extra days on a term, or a credit, given with a resolution. Written in the resolution's
-- transaction, so a resolution compensates exactly once.
CREATE TABLE compensations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    interaction_id INTEGER NOT NULL REFERENCES interactions (id),
    subscriber_id  INTEGER NOT NULL REFERENCES subscribers (id),
    kind           TEXT NOT NULL,
    term_id        INTEGER REFERENCES terms (id),
    days           INTEGER,
    amount         INTEGER,
    currency       TEXT,
    reason         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL
);
CREATE INDEX compensations_by_subscriber ON compensations (subscriber_id);
