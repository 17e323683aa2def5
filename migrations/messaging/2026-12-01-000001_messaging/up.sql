-- Messages between patients, clinicians and locations.
CREATE TABLE messages (
    uuid            uuid PRIMARY KEY,
    created         timestamptz NOT NULL,
    modified        timestamptz NOT NULL,
    created_by      text NOT NULL,
    sender          text NOT NULL CHECK (sender <> ''),
    sender_type     text NOT NULL CHECK (sender_type IN ('patient', 'clinician', 'location')),
    receiver        text NOT NULL CHECK (receiver <> ''),
    receiver_type   text NOT NULL CHECK (receiver_type IN ('patient', 'clinician', 'location')),
    message_type    integer NOT NULL CHECK (message_type IN (0, 1, 2, 3, 5, 6, 7, 8, 9, 10)),
    content         text NOT NULL CHECK (content <> ''),
    related_message uuid REFERENCES messages (uuid),
    -- Client-set instants: the instant for ordering and filtering, the text exactly as sent.
    retrieved       timestamptz,
    retrieved_text  text,
    confirmed       timestamptz,
    confirmed_text  text,
    confirmed_by    text,
    cancelled       timestamptz,
    cancelled_text  text,
    cancelled_by    text,
    CHECK (related_message IS NULL OR related_message <> uuid),
    CHECK ((retrieved IS NULL) = (retrieved_text IS NULL)),
    CHECK ((confirmed IS NULL) = (confirmed_text IS NULL)),
    CHECK ((cancelled IS NULL) = (cancelled_text IS NULL)),
    CHECK (confirmed IS NULL OR confirmed_by IS NOT NULL),
    CHECK (cancelled IS NULL OR cancelled_by IS NOT NULL),
    -- Only call-backs can be cancelled; a cancelled message is never confirmed afterwards (the
    -- handler enforces the order; the database refuses a cancelled non-call-back).
    CHECK (cancelled IS NULL OR message_type = 5)
);

CREATE INDEX messages_sender_created ON messages (sender, created DESC, uuid DESC);
CREATE INDEX messages_receiver_created ON messages (receiver, created DESC, uuid DESC);
CREATE INDEX messages_pair_created ON messages (sender, receiver, created DESC, uuid DESC);
-- "Active": not cancelled, and either not confirmed yet or a (confirmed) call-back.
CREATE INDEX messages_receiver_active ON messages (receiver, created DESC, uuid DESC)
    WHERE cancelled IS NULL AND (confirmed IS NULL OR message_type = 5);
CREATE INDEX messages_sender_active ON messages (sender, created DESC, uuid DESC)
    WHERE cancelled IS NULL AND (confirmed IS NULL OR message_type = 5);
-- Open call-backs: neither confirmed nor cancelled.
CREATE INDEX messages_open_callbacks_receiver ON messages (receiver, created DESC)
    WHERE message_type = 5 AND confirmed IS NULL AND cancelled IS NULL;
CREATE INDEX messages_open_callbacks_sender ON messages (sender, created DESC)
    WHERE message_type = 5 AND confirmed IS NULL AND cancelled IS NULL;
CREATE INDEX messages_related ON messages (related_message) WHERE related_message IS NOT NULL;

-- Ward devices (SEND entry tablets).
CREATE TABLE devices (
    uuid        uuid PRIMARY KEY,
    created     timestamptz NOT NULL,
    modified    timestamptz NOT NULL,
    created_by  text NOT NULL,
    location_id text NOT NULL CHECK (location_id <> ''),
    description text NOT NULL,
    active      boolean NOT NULL DEFAULT true
);
CREATE INDEX devices_location ON devices (location_id);

-- Clinicians allowed to log in through a ward device.
CREATE TABLE clinicians (
    clinician_id            text PRIMARY KEY CHECK (clinician_id <> ''),
    created                 timestamptz NOT NULL,
    modified                timestamptz NOT NULL,
    login_active            boolean NOT NULL,
    products                jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(products) = 'array'),
    groups                  jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(groups) = 'array'),
    locations               jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(locations) = 'array'),
    send_entry_identifier   text UNIQUE CHECK (send_entry_identifier <> ''),
    contract_expiry_eod_date date
);

-- One-time activations of a patient app or a ward device. Codes and PINs are stored only as a
-- SHA-256 lookup key and a slow (argon2id) hash.
CREATE TABLE activations (
    uuid            uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('patient', 'device')),
    subject_id      text NOT NULL,
    created         timestamptz NOT NULL,
    created_by      text NOT NULL,
    expires_at      timestamptz NOT NULL,
    code_lookup     text NOT NULL UNIQUE,
    code_hash       text NOT NULL,
    otp_hash        text,
    otp_serial      integer NOT NULL DEFAULT 0,
    failed_attempts integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    completed       timestamptz,
    CHECK (kind = 'device' OR otp_hash IS NOT NULL)
);
CREATE INDEX activations_subject ON activations (kind, subject_id, created DESC);

-- Authorisation codes handed out for a completed activation, traded once for a JWT.
CREATE TABLE authorisation_codes (
    uuid          uuid PRIMARY KEY,
    activation_id uuid NOT NULL REFERENCES activations (uuid),
    kind          text NOT NULL CHECK (kind IN ('patient', 'device')),
    subject_id    text NOT NULL,
    created       timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    code_lookup   text NOT NULL UNIQUE,
    code_hash     text NOT NULL,
    used          timestamptz
);

-- Every login attempt, successful or not.
CREATE TABLE login_audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    kind       text NOT NULL,
    subject_id text,
    success    boolean NOT NULL,
    reason     text NOT NULL,
    client_ip  text
);
CREATE INDEX login_audit_at ON login_audit (at DESC);

-- First responses to POSTs sent with an Idempotency-Key.
CREATE TABLE idempotency_keys (
    caller      text NOT NULL,
    route       text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    status      integer NOT NULL,
    body        jsonb NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, route, key)
);
