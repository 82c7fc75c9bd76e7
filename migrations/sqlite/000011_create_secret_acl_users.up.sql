CREATE TABLE secret_acl_users (
    secret_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (secret_id, operation, user_id),
    FOREIGN KEY (secret_id, operation) REFERENCES secret_acls (secret_id, operation) ON DELETE CASCADE
) STRICT;
CREATE INDEX secret_acl_users_user_idx ON secret_acl_users (user_id);
