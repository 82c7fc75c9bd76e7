CREATE TABLE secret_consumers (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26),
    PRIMARY KEY (secret_id, service, resource_type, resource_id)
) STRICT;
CREATE INDEX secret_consumers_project_idx ON secret_consumers (project_id);
