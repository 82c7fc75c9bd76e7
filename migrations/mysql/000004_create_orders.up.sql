CREATE TABLE orders (
    id CHAR(36) NOT NULL,
    project_id VARCHAR(255) NOT NULL,
    creator_id VARCHAR(255) NOT NULL,
    type VARCHAR(255) NOT NULL,
    status VARCHAR(20) NOT NULL,
    meta TEXT NOT NULL,
    secret_id CHAR(36) NULL,
    container_id CHAR(36) NULL,
    error_status_code VARCHAR(16) NULL,
    error_reason TEXT NULL,
    created DATETIME(6) NOT NULL,
    updated DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY orders_project_created_idx (project_id, created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
