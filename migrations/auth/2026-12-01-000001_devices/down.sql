DROP TABLE device_connections;
DROP TABLE devices;
