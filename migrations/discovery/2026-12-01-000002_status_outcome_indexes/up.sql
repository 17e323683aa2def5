-- The status page and gauges read each server's latest success and latest error.
CREATE INDEX statuses_server_success_time ON statuses (server_id, created_at DESC) WHERE error IS NULL;
CREATE INDEX statuses_server_error_time ON statuses (server_id, created_at DESC) WHERE error IS NOT NULL;
