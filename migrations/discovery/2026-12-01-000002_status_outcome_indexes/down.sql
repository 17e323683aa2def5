DROP INDEX IF EXISTS statuses_server_error_time;
DROP INDEX IF EXISTS statuses_server_success_time;
