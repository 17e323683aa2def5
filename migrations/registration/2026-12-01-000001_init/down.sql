DROP TABLE IF EXISTS usage_reports;
DROP TABLE IF EXISTS deliveries;
DROP TABLE IF EXISTS broadcasts;
DROP TABLE IF EXISTS registrations;
