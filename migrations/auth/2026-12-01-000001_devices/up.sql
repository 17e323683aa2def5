-- Client-certificate devices: the identity is the certificate's public key (SubjectPublicKeyInfo).
CREATE TABLE devices (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key_data    bytea NOT NULL UNIQUE,
    fingerprint text NOT NULL UNIQUE CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    role        text NOT NULL DEFAULT 'untrusted'
                CHECK (role IN ('untrusted', 'server', 'releaser', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_untrusted_created ON devices (created_at) WHERE role = 'untrusted';

-- One row per authenticated request: when, from where, with what client.
CREATE TABLE device_connections (
    id          bigserial PRIMARY KEY,
    device_id   uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    ip          text,
    user_agent  text CHECK (length(user_agent) <= 512)
);
CREATE INDEX device_connections_device_time ON device_connections (device_id, created_at DESC);
