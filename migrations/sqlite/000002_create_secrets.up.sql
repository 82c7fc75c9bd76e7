CREATE TABLE secrets (
    id TEXT NOT NULL PRIMARY KEY,
    project_id TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    name TEXT COLLATE NOCASE NULL,
    secret_type TEXT NOT NULL,
    algorithm TEXT COLLATE NOCASE NULL,
    bit_length INTEGER NULL,
    mode TEXT COLLATE NOCASE NULL,
    status TEXT NOT NULL,
    expiration TEXT NULL CHECK (expiration IS NULL OR length(expiration) = 26),
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26),
    payload_content_type TEXT NULL,
    payload BLOB NULL
) STRICT;
CREATE INDEX secrets_project_created_idx ON secrets (project_id, created);
CREATE INDEX secrets_project_name_idx ON secrets (project_id, name);
