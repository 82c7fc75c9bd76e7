DROP TABLE secret_consumers;
