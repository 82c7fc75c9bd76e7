ALTER TABLE key_audit DROP INDEX key_audit_event_idx, DROP COLUMN event_id;
