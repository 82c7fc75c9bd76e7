CREATE TABLE container_acls (
    container_id TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    operation TEXT NOT NULL,
    project_access INTEGER NOT NULL,
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26),
    PRIMARY KEY (container_id, operation)
) STRICT;
