DROP TABLE project_keys;
