DROP TABLE containers;
