DROP TABLE project_keks;
