CREATE TABLE container_acls (
    container_id CHAR(36) NOT NULL,
    operation VARCHAR(20) NOT NULL,
    project_access TINYINT(1) NOT NULL,
    created DATETIME(6) NOT NULL,
    updated DATETIME(6) NOT NULL,
    PRIMARY KEY (container_id, operation),
    CONSTRAINT container_acls_container_fk FOREIGN KEY (container_id) REFERENCES containers (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
