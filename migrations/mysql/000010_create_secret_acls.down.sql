DROP TABLE secret_acls;
