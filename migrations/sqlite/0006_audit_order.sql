-- The audit log is listed by when things happened. Reads are queued and written in batches,
-- so a read may be written (and numbered) after a change made a moment later: order by `at`,
-- with the id only breaking ties.
DROP INDEX audit_log_subscriber;
CREATE INDEX audit_log_subscriber ON audit_log (subscriber_id, at, id);
CREATE INDEX audit_log_at ON audit_log (at, id);
