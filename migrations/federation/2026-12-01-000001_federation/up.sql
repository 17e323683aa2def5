-- Person records are JSONB documents keeping Thalamus's field names and any unknown field.
-- The id, password hash, roles and active flag live in columns (the data document never holds
-- them), so that no query can return a hash by accident and access checks need no JSON parsing.
CREATE TABLE people (
    id text COLLATE "C" PRIMARY KEY
        CHECK (id ~ '^[A-Z0-9][A-Z0-9_.-]{0,63}$'),
    password_hash text,
    roles text[] NOT NULL DEFAULT '{end_user}',
    active boolean NOT NULL DEFAULT true,
    -- bumped on every password, role or active change (audit and cache invalidation)
    credential_version bigint NOT NULL DEFAULT 0,
    data jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(data) = 'object' AND NOT (data ?| ARRAY['id', 'password', 'roles', 'active'])),
    name_key text COLLATE "C" GENERATED ALWAYS AS (lower(data ->> 'name')) STORED,
    lastname_key text COLLATE "C" GENERATED ALWAYS AS (lower(data ->> 'lastname')) STORED,
    dob_key text COLLATE "C" GENERATED ALWAYS AS (data ->> 'dob') STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX people_name_key ON people (name_key, id);
CREATE INDEX people_lastname_key ON people (lastname_key, id);
CREATE INDEX people_dob_key ON people (dob_key, id);

-- Pages of life: one book per person.
CREATE TABLE pols (
    id uuid PRIMARY KEY,
    book text COLLATE "C" NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    data jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(data) = 'object' AND NOT (data ?| ARRAY['id', 'book'])),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, book)
);
CREATE INDEX pols_book ON pols (book, created_at, id);

-- Documents attached to a person, or to one page of that person's book.
CREATE TABLE personal_docs (
    id uuid PRIMARY KEY,
    person text COLLATE "C" NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    page uuid,
    doc_type text NOT NULL CHECK (length(doc_type) BETWEEN 1 AND 200),
    extension text NOT NULL CHECK (extension ~ '^[A-Za-z0-9]{1,16}$'),
    description text NOT NULL DEFAULT '',
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content bytea NOT NULL,
    data jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (page, person) REFERENCES pols (id, book) ON DELETE CASCADE
);
CREATE INDEX personal_docs_person ON personal_docs (person, created_at, id);
CREATE INDEX personal_docs_page ON personal_docs (page) WHERE page IS NOT NULL;

CREATE TABLE domiciliary_units (
    id text COLLATE "C" PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    data jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object' AND NOT data ? 'id'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE institutions (
    id text COLLATE "C" PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    data jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object' AND NOT data ? 'id'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Who read or changed which person's record. No foreign key: the trail outlives a deleted person.
CREATE TABLE audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL
        CHECK (action IN ('read', 'list', 'create', 'update', 'delete', 'roles', 'active', 'password', 'import')),
    resource text NOT NULL,
    person text COLLATE "C",
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_person ON audit (person, id) WHERE person IS NOT NULL;
CREATE INDEX audit_listed ON audit USING gin ((detail -> 'ids'));
