CREATE TABLE secrets (
    id CHAR(36) NOT NULL,
    project_id VARCHAR(255) NOT NULL,
    creator_id VARCHAR(255) NOT NULL,
    name VARCHAR(255) COLLATE utf8mb4_unicode_ci NULL,
    secret_type VARCHAR(255) NOT NULL,
    algorithm VARCHAR(255) COLLATE utf8mb4_unicode_ci NULL,
    bit_length INT NULL,
    mode VARCHAR(255) COLLATE utf8mb4_unicode_ci NULL,
    status VARCHAR(20) NOT NULL,
    expiration DATETIME(6) NULL,
    created DATETIME(6) NOT NULL,
    updated DATETIME(6) NOT NULL,
    payload_content_type VARCHAR(255) NULL,
    payload MEDIUMBLOB NULL,
    PRIMARY KEY (id),
    KEY secrets_project_created_idx (project_id, created),
    KEY secrets_project_name_idx (project_id, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
