CREATE TABLE container_acl_users (
    container_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (container_id, operation, user_id),
    FOREIGN KEY (container_id, operation) REFERENCES container_acls (container_id, operation) ON DELETE CASCADE
) STRICT;
CREATE INDEX container_acl_users_user_idx ON container_acl_users (user_id);
