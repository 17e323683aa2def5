-- Installations that registered an address, the broadcasts sent to them, one delivery row per
-- recipient of each broadcast (the durable queue), and usage reports.

CREATE TABLE registrations (
    -- The product id returned to the client.
    id uuid PRIMARY KEY,
    -- Normalised (trimmed, domain in lower case); unique regardless of case.
    email text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254 AND email = btrim(email) AND position('@' IN email) > 1),
    version text NOT NULL CHECK (char_length(version) <= 64),
    distribution text CHECK (char_length(distribution) <= 128),
    client_ip text CHECK (char_length(client_ip) <= 64),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    unsubscribed_at timestamptz,
    CHECK (active = (unsubscribed_at IS NULL))
);
CREATE UNIQUE INDEX registrations_email_ci ON registrations (lower(email));
CREATE INDEX registrations_active ON registrations (created_at) WHERE active;

CREATE TABLE broadcasts (
    id uuid PRIMARY KEY,
    title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    contents text NOT NULL CHECK (char_length(contents) BETWEEN 1 AND 100000),
    -- Who queued it: "pin" (board PIN), "pin:<name>" (PIN with a basic-auth user name) or "jwt:<sub>".
    sent_by text NOT NULL CHECK (char_length(sent_by) BETWEEN 1 AND 200),
    client_ip text CHECK (char_length(client_ip) <= 64),
    recipients integer NOT NULL CHECK (recipients >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX broadcasts_created ON broadcasts (created_at DESC);

CREATE TABLE deliveries (
    id bigserial PRIMARY KEY,
    broadcast_id uuid NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    registration_id uuid NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    -- The address at the time the broadcast was queued.
    email text NOT NULL,
    state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed', 'skipped')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text CHECK (char_length(last_error) <= 1000),
    finished_at timestamptz,
    UNIQUE (broadcast_id, registration_id),
    CHECK ((state = 'queued') = (finished_at IS NULL))
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX deliveries_by_broadcast ON deliveries (broadcast_id, state);

CREATE TABLE usage_reports (
    id bigserial PRIMARY KEY,
    site_id uuid NOT NULL,
    reporting_interval text NOT NULL CHECK (reporting_interval ~ '^[0-9]{4}(0[1-9]|1[0-2])$'),
    version text NOT NULL CHECK (char_length(version) BETWEEN 1 AND 64),
    distribution text CHECK (char_length(distribution) <= 128),
    environment text CHECK (char_length(environment) <= 128),
    locale text CHECK (char_length(locale) <= 64),
    time_zone text CHECK (char_length(time_zone) <= 64),
    records integer NOT NULL CHECK (records >= 0),
    document jsonb NOT NULL,
    client_ip text CHECK (char_length(client_ip) <= 64),
    received_at timestamptz NOT NULL DEFAULT now(),
    -- A client that resends a month's report replaces it.
    UNIQUE (site_id, reporting_interval)
);
CREATE INDEX usage_reports_interval ON usage_reports (reporting_interval, version);
