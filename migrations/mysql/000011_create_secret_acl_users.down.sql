DROP TABLE secret_acl_users;
