CREATE TABLE secret_acl_users (
    secret_id CHAR(36) NOT NULL,
    operation VARCHAR(20) NOT NULL,
    user_id VARCHAR(255) NOT NULL,
    PRIMARY KEY (secret_id, operation, user_id),
    KEY secret_acl_users_user_idx (user_id),
    CONSTRAINT secret_acl_users_acl_fk FOREIGN KEY (secret_id, operation) REFERENCES secret_acls (secret_id, operation) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
