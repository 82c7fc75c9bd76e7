CREATE TABLE container_consumers (
    container_id CHAR(36) NOT NULL,
    name VARCHAR(255) NOT NULL,
    url VARCHAR(255) NOT NULL,
    project_id VARCHAR(255) NOT NULL,
    created DATETIME(6) NOT NULL,
    updated DATETIME(6) NOT NULL,
    PRIMARY KEY (container_id, name, url),
    KEY container_consumers_project_idx (project_id),
    CONSTRAINT container_consumers_container_fk FOREIGN KEY (container_id) REFERENCES containers (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
