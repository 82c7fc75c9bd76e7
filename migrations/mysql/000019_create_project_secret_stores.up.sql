-- A project's preferred secret store (POST /v1/secret-stores/{id}/preferred).
CREATE TABLE project_secret_stores (
    project_id VARCHAR(255) NOT NULL,
    secret_store VARCHAR(64) NOT NULL,
    created DATETIME(6) NOT NULL,
    updated DATETIME(6) NOT NULL,
    PRIMARY KEY (project_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
