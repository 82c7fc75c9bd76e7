ALTER TABLE secrets DROP COLUMN secret_store;
