CREATE TABLE project_keks (
    project_id VARCHAR(255) NOT NULL,
    master_key_id VARCHAR(255) NOT NULL,
    wrapped_kek BLOB NOT NULL,
    created DATETIME(6) NOT NULL,
    updated DATETIME(6) NOT NULL,
    PRIMARY KEY (project_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
