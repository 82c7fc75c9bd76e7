CREATE TABLE container_secrets (
    container_id CHAR(36) NOT NULL,
    name VARCHAR(255) NOT NULL,
    secret_id CHAR(36) NOT NULL,
    PRIMARY KEY (container_id, name, secret_id),
    KEY container_secrets_secret_idx (secret_id),
    CONSTRAINT container_secrets_container_fk FOREIGN KEY (container_id) REFERENCES containers (id) ON DELETE CASCADE,
    CONSTRAINT container_secrets_secret_fk FOREIGN KEY (secret_id) REFERENCES secrets (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
