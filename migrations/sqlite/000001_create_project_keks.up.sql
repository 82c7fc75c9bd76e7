CREATE TABLE project_keks (
    project_id TEXT NOT NULL PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped_kek BLOB NOT NULL,
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26)
) STRICT;
