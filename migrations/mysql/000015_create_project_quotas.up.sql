CREATE TABLE project_quotas (
    project_id VARCHAR(255) NOT NULL,
    secrets INT NULL,
    orders INT NULL,
    containers INT NULL,
    consumers INT NULL,
    cas INT NULL,
    created DATETIME(6) NOT NULL,
    updated DATETIME(6) NOT NULL,
    PRIMARY KEY (project_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
