CREATE TABLE orders (
    id TEXT NOT NULL PRIMARY KEY,
    project_id TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    meta TEXT NOT NULL,
    secret_id TEXT NULL,
    container_id TEXT NULL,
    error_status_code TEXT NULL,
    error_reason TEXT NULL,
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26)
) STRICT;
CREATE INDEX orders_project_created_idx ON orders (project_id, created);
