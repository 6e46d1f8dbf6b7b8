-- The audience API: advertiser accounts (and the keys bound to one), the audiences staff
-- publish to them, each audience's releases (exact and noised figures, and the epsilon
-- spent), the placements advertisers book on them, and every request an advertiser made.

CREATE TABLE advertisers (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    contact_person TEXT,
    notes          TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

ALTER TABLE api_keys ADD COLUMN advertiser_id INTEGER REFERENCES advertisers (id);

CREATE TABLE audiences (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    description    TEXT,
    segment_id     INTEGER NOT NULL REFERENCES segments (id),
    -- The release settings as JSON: dimensions, pairs, epsilons, periods, minimum cell.
    settings       TEXT NOT NULL,
    published_by   TEXT NOT NULL,
    published_at   TEXT NOT NULL,
    unpublished_at TEXT,
    -- The consented members of the last release, packed (see `domain::audience`), to refuse
    -- a release or publication that differs from it by a few readers.
    members        BLOB
);

CREATE TABLE audience_advertisers (
    audience_id   INTEGER NOT NULL REFERENCES audiences (id),
    advertiser_id INTEGER NOT NULL REFERENCES advertisers (id),
    PRIMARY KEY (audience_id, advertiser_id)
) WITHOUT ROWID;
CREATE INDEX audience_advertisers_advertiser ON audience_advertisers (advertiser_id);

CREATE TABLE audience_releases (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    audience_id INTEGER NOT NULL REFERENCES audiences (id),
    made_at     TEXT NOT NULL,
    -- Thousandths, as `Epsilon` keeps them.
    epsilon     INTEGER NOT NULL,
    sensitivity INTEGER NOT NULL,
    -- JSON figures: the exact ones for staff, the noised ones advertisers are shown.
    exact       TEXT NOT NULL,
    released    TEXT NOT NULL
);
CREATE INDEX audience_releases_audience ON audience_releases (audience_id, id);

CREATE TABLE audience_requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    advertiser_id INTEGER NOT NULL REFERENCES advertisers (id),
    key_id        INTEGER NOT NULL REFERENCES api_keys (id),
    -- As asked: an advertiser may ask for an audience that does not exist or is not theirs.
    audience_id   INTEGER,
    release_id    INTEGER,
    -- What was asked: `audiences`, `audience`, `release`, `release.csv`, `history`,
    -- `booking`, `bookings`.
    what          TEXT NOT NULL,
    request_id    TEXT
);
CREATE INDEX audience_requests_audience ON audience_requests (audience_id, id);

-- A placement an advertiser books on an audience: requested, then accepted or declined by
-- staff, then delivered by the publisher, with the reach released noised.
CREATE TABLE audience_bookings (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    audience_id   INTEGER NOT NULL REFERENCES audiences (id),
    advertiser_id INTEGER NOT NULL REFERENCES advertisers (id),
    -- `print_insert` or `digital`.
    placement     TEXT NOT NULL,
    starts_on     TEXT NOT NULL,
    ends_on       TEXT NOT NULL,
    note          TEXT,
    -- `requested`, `accepted`, `declined` or `delivered`.
    state         TEXT NOT NULL,
    requested_at  TEXT NOT NULL,
    decided_at    TEXT,
    decided_by    TEXT,
    reason        TEXT,
    delivered_at  TEXT,
    exact_reach   INTEGER,
    -- The reach as released (a JSON cell), and the epsilon it spent of the audience's budget.
    reach         TEXT,
    reach_epsilon INTEGER
);
CREATE INDEX audience_bookings_audience ON audience_bookings (audience_id, id);
