-- A unique id per audit event, set by arca-api when the event happens, so
-- that a batch re-sent after a commit whose outcome was unknown (the
-- connection cut during COMMIT) is not recorded twice. Rows written before
-- this version keep NULL, which a unique index allows any number of times.
ALTER TABLE key_audit ADD COLUMN event_id CHAR(36) NULL, ADD UNIQUE KEY key_audit_event_idx (event_id);
