CREATE TABLE secret_acls (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    operation TEXT NOT NULL,
    project_access INTEGER NOT NULL,
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26),
    PRIMARY KEY (secret_id, operation)
) STRICT;
