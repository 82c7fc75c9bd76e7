DROP INDEX key_audit_event_idx;
ALTER TABLE key_audit DROP COLUMN event_id;
