-- Hourly success counts per server, kept by a trigger, so uptime over 24 hours and 7 days reads
-- at most 168 rows per server instead of every status in the window.
CREATE TABLE status_hourly (
    server_id   uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    hour        timestamptz NOT NULL,
    ok          integer NOT NULL DEFAULT 0 CHECK (ok >= 0),
    total       integer NOT NULL DEFAULT 0 CHECK (total >= ok),
    PRIMARY KEY (server_id, hour)
);
CREATE INDEX status_hourly_hour ON status_hourly (hour);

CREATE FUNCTION count_status_hourly() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO status_hourly AS h (server_id, hour, ok, total)
    VALUES (NEW.server_id, date_trunc('hour', NEW.created_at), CASE WHEN NEW.error IS NULL THEN 1 ELSE 0 END, 1)
    ON CONFLICT (server_id, hour) DO UPDATE
        SET ok = h.ok + EXCLUDED.ok, total = h.total + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER statuses_count_hourly AFTER INSERT ON statuses
    FOR EACH ROW EXECUTE FUNCTION count_status_hourly();

INSERT INTO status_hourly (server_id, hour, ok, total)
SELECT server_id, date_trunc('hour', created_at), count(*) FILTER (WHERE error IS NULL), count(*)
FROM statuses GROUP BY 1, 2;
