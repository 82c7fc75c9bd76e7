DROP TABLE project_secret_stores;
