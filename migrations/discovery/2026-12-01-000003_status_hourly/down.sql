DROP TRIGGER IF EXISTS statuses_count_hourly ON statuses;
DROP FUNCTION IF EXISTS count_status_hourly();
DROP TABLE IF EXISTS status_hourly;
