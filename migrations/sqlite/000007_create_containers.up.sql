CREATE TABLE containers (
    id TEXT NOT NULL PRIMARY KEY,
    project_id TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    name TEXT COLLATE NOCASE NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26)
) STRICT;
CREATE INDEX containers_project_created_idx ON containers (project_id, created);
