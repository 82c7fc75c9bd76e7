CREATE TABLE key_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL CHECK (length(created) = 26),
    request_id TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    project_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_project_id TEXT NOT NULL,
    is_service INTEGER NOT NULL,
    roles TEXT NOT NULL,
    detail TEXT NOT NULL
) STRICT;
CREATE INDEX key_audit_project_idx ON key_audit (project_id, id);
CREATE INDEX key_audit_key_idx ON key_audit (key_id, id);
