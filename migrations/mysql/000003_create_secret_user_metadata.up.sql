CREATE TABLE secret_user_metadata (
    secret_id CHAR(36) NOT NULL,
    `key` VARCHAR(255) NOT NULL,
    `value` VARCHAR(255) NOT NULL,
    PRIMARY KEY (secret_id, `key`),
    CONSTRAINT secret_user_metadata_secret_fk FOREIGN KEY (secret_id) REFERENCES secrets (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
