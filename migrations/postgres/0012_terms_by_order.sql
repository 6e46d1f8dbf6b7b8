-- An order is read back with its terms (and their holds) after every renewal and
-- subscription: without this index each read scanned every term.
CREATE INDEX terms_by_order ON terms (order_id);
