-- A project has one KEK per secret store (see the MySQL migration of the
-- same number). SQLite cannot change a primary key: the table is rebuilt.
CREATE TABLE project_keks_new (
    project_id TEXT NOT NULL,
    secret_store TEXT NOT NULL DEFAULT '' CHECK (length(secret_store) <= 64),
    master_key_id TEXT NOT NULL,
    wrapped_kek BLOB NOT NULL,
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26),
    PRIMARY KEY (project_id, secret_store)
) STRICT;
INSERT INTO project_keks_new (project_id, secret_store, master_key_id, wrapped_kek, created, updated)
    SELECT project_id, '', master_key_id, wrapped_kek, created, updated FROM project_keks;
DROP TABLE project_keks;
ALTER TABLE project_keks_new RENAME TO project_keks;
