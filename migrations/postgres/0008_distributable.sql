-- A distributable schema: every table that belongs to one subscriber carries the subscriber's
-- id in its keys, so the tables can be distributed by it (Citus or a similar engine) and each
-- subscriber's rows live together. README "Distributing the database" lists every table's
-- class; tests/api/distributable.rs checks the rules against the migrated catalog.

-- The foreign keys between a subscriber's tables come back below with subscriber_id in them.
ALTER TABLE terms DROP CONSTRAINT terms_order_id_fkey;
ALTER TABLE terms DROP CONSTRAINT terms_renews_term_id_fkey;
ALTER TABLE holds DROP CONSTRAINT holds_term_id_fkey;
ALTER TABLE compensations DROP CONSTRAINT compensations_term_id_fkey;

-- Primary and unique keys include subscriber_id: a shard can only enforce what it holds.
-- The id leads, so lookups by id alone still use the key's index.
ALTER TABLE consent_events DROP CONSTRAINT consent_events_pkey,
    ADD PRIMARY KEY (id, subscriber_id);
ALTER TABLE orders DROP CONSTRAINT orders_pkey, ADD PRIMARY KEY (id, subscriber_id);
ALTER TABLE terms DROP CONSTRAINT terms_pkey, ADD PRIMARY KEY (id, subscriber_id);
ALTER TABLE holds DROP CONSTRAINT holds_pkey, ADD PRIMARY KEY (id, subscriber_id);
ALTER TABLE compensations DROP CONSTRAINT compensations_pkey,
    ADD PRIMARY KEY (id, subscriber_id);
ALTER TABLE tier_changes DROP CONSTRAINT tier_changes_pkey, ADD PRIMARY KEY (id, subscriber_id);
ALTER TABLE tier_overrides DROP CONSTRAINT tier_overrides_pkey,
    ADD PRIMARY KEY (id, subscriber_id);
-- A term is still renewed at most once: the renewing term belongs to the same reader (the
-- foreign key below says so), so the pair is as unique as the id was.
ALTER TABLE terms DROP CONSTRAINT terms_renews_term_id_key,
    ADD CONSTRAINT terms_renews_term_id_key UNIQUE (renews_term_id, subscriber_id);

-- Checked at commit: a merge moves a reader's orders, terms and holds to the kept number one
-- table after another, and the rows agree again only once all have moved.
ALTER TABLE terms ADD CONSTRAINT terms_order_id_fkey
    FOREIGN KEY (subscriber_id, order_id) REFERENCES orders (subscriber_id, id)
    DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE terms ADD CONSTRAINT terms_renews_term_id_fkey
    FOREIGN KEY (subscriber_id, renews_term_id) REFERENCES terms (subscriber_id, id)
    DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE holds ADD CONSTRAINT holds_term_id_fkey
    FOREIGN KEY (subscriber_id, term_id) REFERENCES terms (subscriber_id, id)
    DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE compensations ADD CONSTRAINT compensations_term_id_fkey
    FOREIGN KEY (subscriber_id, term_id) REFERENCES terms (subscriber_id, id)
    DEFERRABLE INITIALLY DEFERRED;

-- A merged number points at the number it was merged into, which may live on another shard:
-- the merge checks the target in its own transaction, and readers are never deleted.
ALTER TABLE subscribers DROP CONSTRAINT subscribers_merged_into_fkey;

-- Interactions start as contacts nobody has linked to a reader yet, so they cannot be placed
-- by subscriber_id (a distribution column is never empty, and never changes). They are
-- distributed by their own id, their steps with them; the link to a reader is a plain column
-- the service checks (the reader must be live) before it writes it.
ALTER TABLE interactions DROP CONSTRAINT interactions_subscriber_id_fkey;
ALTER TABLE interaction_steps DROP CONSTRAINT interaction_steps_subscriber_id_fkey;
ALTER TABLE interaction_steps DROP CONSTRAINT interaction_steps_pkey,
    ADD PRIMARY KEY (id, interaction_id);
-- A compensation belongs to the reader (it extends the reader's term); the interaction it
-- settles lives elsewhere and is written in the same transaction.
ALTER TABLE compensations DROP CONSTRAINT compensations_interaction_id_fkey;
