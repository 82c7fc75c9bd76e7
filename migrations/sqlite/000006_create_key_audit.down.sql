DROP TABLE key_audit;
