CREATE TABLE container_secrets (
    container_id TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    PRIMARY KEY (container_id, name, secret_id)
) STRICT;
CREATE INDEX container_secrets_secret_idx ON container_secrets (secret_id);
