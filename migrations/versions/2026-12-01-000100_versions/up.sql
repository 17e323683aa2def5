-- Released versions. A version is its semver triple plus the pre-release label ('' for a release);
-- build metadata is refused by the service (it plays no part in ordering).
CREATE TABLE versions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    major         integer NOT NULL CHECK (major >= 0),
    minor         integer NOT NULL CHECK (minor >= 0),
    patch         integer NOT NULL CHECK (patch >= 0),
    pre_release   text NOT NULL DEFAULT '' CHECK (pre_release ~ '^([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$'),
    published     boolean NOT NULL DEFAULT true,
    -- Stored byte for byte as the releaser sent it (1 MiB at most, enforced by the service too).
    changelog     text NOT NULL CHECK (octet_length(changelog) <= 1048576),
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- The device (auth.devices id and key fingerprint) that published it. No foreign key: the record
    -- outlives the device, and the auth schema belongs to another owner.
    created_by    uuid NOT NULL,
    created_by_fingerprint text NOT NULL,
    withdrawn_at  timestamptz,
    withdrawn_by  uuid,
    withdrawn_by_fingerprint text,
    CHECK (published OR withdrawn_at IS NOT NULL),
    UNIQUE (major, minor, patch, pre_release)
);

-- Downloadable builds of a version.
CREATE TABLE artifacts (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    version_id    uuid NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    artifact_type text NOT NULL CHECK (artifact_type ~ '^[A-Za-z0-9._-]{1,64}$'),
    platform      text NOT NULL CHECK (platform ~ '^[A-Za-z0-9._-]{1,64}$'),
    download_url  text NOT NULL CHECK (download_url ~* '^https://[^\s/?#]+' AND length(download_url) <= 2048),
    sha256        text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size          bigint CHECK (size >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    uuid NOT NULL,
    created_by_fingerprint text NOT NULL,
    UNIQUE (version_id, artifact_type, platform)
);

-- Bumped by every write in the same transaction: replicas compare it with their in-memory snapshot
-- to know when to reload.
CREATE TABLE catalogue_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation bigint NOT NULL DEFAULT 0
);
INSERT INTO catalogue_state DEFAULT VALUES;
