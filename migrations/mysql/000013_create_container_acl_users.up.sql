CREATE TABLE container_acl_users (
    container_id CHAR(36) NOT NULL,
    operation VARCHAR(20) NOT NULL,
    user_id VARCHAR(255) NOT NULL,
    PRIMARY KEY (container_id, operation, user_id),
    KEY container_acl_users_user_idx (user_id),
    CONSTRAINT container_acl_users_acl_fk FOREIGN KEY (container_id, operation) REFERENCES container_acls (container_id, operation) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
