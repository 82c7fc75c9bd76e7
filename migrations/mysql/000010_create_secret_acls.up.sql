CREATE TABLE secret_acls (
    secret_id CHAR(36) NOT NULL,
    operation VARCHAR(20) NOT NULL,
    project_access TINYINT(1) NOT NULL,
    created DATETIME(6) NOT NULL,
    updated DATETIME(6) NOT NULL,
    PRIMARY KEY (secret_id, operation),
    CONSTRAINT secret_acls_secret_fk FOREIGN KEY (secret_id) REFERENCES secrets (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
