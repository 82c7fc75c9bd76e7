-- A unique id per audit event (see the MySQL migration of the same number).
ALTER TABLE key_audit ADD COLUMN event_id TEXT;
CREATE UNIQUE INDEX key_audit_event_idx ON key_audit (event_id);
