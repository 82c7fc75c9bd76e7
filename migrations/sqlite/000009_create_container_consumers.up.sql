CREATE TABLE container_consumers (
    container_id TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    project_id TEXT NOT NULL,
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26),
    PRIMARY KEY (container_id, name, url)
) STRICT;
CREATE INDEX container_consumers_project_idx ON container_consumers (project_id);
