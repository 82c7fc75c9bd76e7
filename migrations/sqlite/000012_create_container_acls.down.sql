DROP TABLE container_acls;
