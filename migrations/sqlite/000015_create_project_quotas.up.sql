CREATE TABLE project_quotas (
    project_id TEXT NOT NULL PRIMARY KEY,
    secrets INTEGER NULL,
    orders INTEGER NULL,
    containers INTEGER NULL,
    consumers INTEGER NULL,
    cas INTEGER NULL,
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26)
) STRICT;
