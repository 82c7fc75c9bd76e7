DROP TABLE container_consumers;
