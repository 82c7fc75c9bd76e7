CREATE TABLE containers (
    id CHAR(36) NOT NULL,
    project_id VARCHAR(255) NOT NULL,
    creator_id VARCHAR(255) NOT NULL,
    name VARCHAR(255) COLLATE utf8mb4_unicode_ci NULL,
    type VARCHAR(20) NOT NULL,
    status VARCHAR(20) NOT NULL,
    created DATETIME(6) NOT NULL,
    updated DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY containers_project_created_idx (project_id, created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
