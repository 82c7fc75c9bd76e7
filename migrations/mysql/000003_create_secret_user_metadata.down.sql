DROP TABLE secret_user_metadata;
