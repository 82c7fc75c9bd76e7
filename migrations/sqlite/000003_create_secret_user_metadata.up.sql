CREATE TABLE secret_user_metadata (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    `key` TEXT NOT NULL,
    `value` TEXT NOT NULL,
    PRIMARY KEY (secret_id, `key`)
) STRICT;
