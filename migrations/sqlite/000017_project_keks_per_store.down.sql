-- Fails (primary key) while a project has KEKs in two stores, as on MySQL.
CREATE TABLE project_keks_old (
    project_id TEXT NOT NULL PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped_kek BLOB NOT NULL,
    created TEXT NOT NULL CHECK (length(created) = 26),
    updated TEXT NOT NULL CHECK (length(updated) = 26)
) STRICT;
INSERT INTO project_keks_old (project_id, master_key_id, wrapped_kek, created, updated)
    SELECT project_id, master_key_id, wrapped_kek, created, updated FROM project_keks;
DROP TABLE project_keks;
ALTER TABLE project_keks_old RENAME TO project_keks;
