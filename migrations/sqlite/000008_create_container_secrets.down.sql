DROP TABLE container_secrets;
