-- Servers the mobile app can pick from (central) and facility servers, with their health history.
CREATE TABLE servers (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text CHECK (name IS NULL OR length(name) BETWEEN 1 AND 200),
    -- An absolute http(s) URL without a trailing slash.
    host        text NOT NULL CHECK (host ~ '^https?://[^/]' AND host !~ '/$' AND length(host) <= 2048),
    kind        text NOT NULL DEFAULT 'central' CHECK (kind IN ('central', 'facility')),
    rank        text CHECK (rank IN ('production', 'clone', 'demo', 'test', 'dev')),
    listed      boolean NOT NULL DEFAULT true,
    -- The device that reports this server's status; servers without one are polled.
    device_id   uuid REFERENCES auth.devices (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX servers_host_unique ON servers (lower(host));

-- One row per health observation: pushed by the server itself or made by the poller.
CREATE TABLE statuses (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    server_id   uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    version     text CHECK (length(version) <= 100),
    latency_ms  integer CHECK (latency_ms >= 0),
    -- NULL for a success; a short error class otherwise.
    error       text CHECK (length(error) <= 200),
    extra       jsonb NOT NULL DEFAULT '{}'::jsonb,
    device_id   uuid,
    CHECK ((error IS NULL) = (version IS NOT NULL))
);
CREATE INDEX statuses_server_time ON statuses (server_id, created_at DESC);
CREATE INDEX statuses_time ON statuses (created_at);

-- Replicas refresh their in-memory server list when this channel is notified.
CREATE FUNCTION notify_servers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('discovery_servers_changed', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER servers_changed AFTER INSERT OR UPDATE OR DELETE ON servers
    FOR EACH STATEMENT EXECUTE FUNCTION notify_servers_changed();
