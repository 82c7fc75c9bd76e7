-- The secret store that holds a secret ('' as for project_keks).
ALTER TABLE secrets ADD COLUMN secret_store TEXT NOT NULL DEFAULT '' CHECK (length(secret_store) <= 64);
