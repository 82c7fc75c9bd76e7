CREATE TABLE secret_consumers (
    secret_id CHAR(36) NOT NULL,
    service VARCHAR(255) NOT NULL,
    resource_type VARCHAR(255) NOT NULL,
    resource_id VARCHAR(36) NOT NULL,
    project_id VARCHAR(255) NOT NULL,
    created DATETIME(6) NOT NULL,
    updated DATETIME(6) NOT NULL,
    PRIMARY KEY (secret_id, service, resource_type, resource_id),
    KEY secret_consumers_project_idx (project_id),
    CONSTRAINT secret_consumers_secret_fk FOREIGN KEY (secret_id) REFERENCES secrets (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
