CREATE TABLE project_keys (
    id CHAR(36) NOT NULL,
    project_id VARCHAR(64) NOT NULL,
    active_project_id VARCHAR(64) NULL,
    algorithm VARCHAR(32) NOT NULL,
    bit_length INT NOT NULL,
    status VARCHAR(20) NOT NULL,
    creator_id VARCHAR(255) NOT NULL,
    material BLOB NULL,
    created DATETIME(6) NOT NULL,
    deactivated DATETIME(6) NULL,
    destroyed DATETIME(6) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY project_keys_active_uq (active_project_id),
    KEY project_keys_project_created_idx (project_id, created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
