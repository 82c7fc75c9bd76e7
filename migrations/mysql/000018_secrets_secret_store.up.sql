-- The secret store that holds a secret ('' as for project_keks).
ALTER TABLE secrets ADD COLUMN secret_store VARCHAR(64) NOT NULL DEFAULT '';
