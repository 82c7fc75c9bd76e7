-- A project's preferred secret store (see the MySQL migration).
CREATE TABLE project_secret_stores (
    project_id TEXT NOT NULL PRIMARY KEY,
    secret_store TEXT NOT NULL CHECK (length(secret_store) <= 64),
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26)
) STRICT;
