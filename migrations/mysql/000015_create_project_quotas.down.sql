DROP TABLE project_quotas;
