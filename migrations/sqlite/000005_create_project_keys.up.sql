CREATE TABLE project_keys (
    id TEXT NOT NULL PRIMARY KEY,
    project_id TEXT NOT NULL,
    active_project_id TEXT NULL UNIQUE,
    algorithm TEXT NOT NULL,
    bit_length INTEGER NOT NULL,
    status TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    material BLOB NULL,
    created TEXT NOT NULL CHECK (length(created) = 26),
    deactivated TEXT NULL CHECK (deactivated IS NULL OR length(deactivated) = 26),
    destroyed TEXT NULL CHECK (destroyed IS NULL OR length(destroyed) = 26)
) STRICT;
CREATE INDEX project_keys_project_created_idx ON project_keys (project_id, created);
