DROP TABLE container_acl_users;
