CREATE TABLE key_audit (
    id BIGINT NOT NULL AUTO_INCREMENT,
    created DATETIME(6) NOT NULL,
    request_id VARCHAR(64) NOT NULL,
    action VARCHAR(16) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    project_id VARCHAR(255) NOT NULL,
    key_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(255) NOT NULL,
    user_project_id VARCHAR(255) NOT NULL,
    is_service TINYINT(1) NOT NULL,
    roles VARCHAR(255) NOT NULL,
    detail VARCHAR(255) NOT NULL,
    PRIMARY KEY (id),
    KEY key_audit_project_idx (project_id, id),
    KEY key_audit_key_idx (key_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
