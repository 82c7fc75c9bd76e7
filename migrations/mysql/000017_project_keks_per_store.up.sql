-- Secret stores (docs/operations.md, "Secret stores"): a project has one KEK
-- per secret store, sealed by that store's master key. Rows written before
-- this version get '', the store of a deployment with one store (and, once
-- several are configured, the global default).
ALTER TABLE project_keks ADD COLUMN secret_store VARCHAR(64) NOT NULL DEFAULT '' AFTER project_id, DROP PRIMARY KEY, ADD PRIMARY KEY (project_id, secret_store);
