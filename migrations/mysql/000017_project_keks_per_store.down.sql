-- Fails (duplicate key) while a project has KEKs in two stores: going down
-- must not drop the KEK of a store's secrets.
ALTER TABLE project_keks DROP PRIMARY KEY, ADD PRIMARY KEY (project_id), DROP COLUMN secret_store;
