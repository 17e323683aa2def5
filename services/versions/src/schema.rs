//! The `versions` schema, written by hand to match migrations/versions.

diesel::table! {
    versions (id) {
        id -> Uuid,
        major -> Int4,
        minor -> Int4,
        patch -> Int4,
        pre_release -> Text,
        published -> Bool,
        changelog -> Text,
        created_at -> Timestamptz,
        created_by -> Uuid,
        created_by_fingerprint -> Text,
        withdrawn_at -> Nullable<Timestamptz>,
        withdrawn_by -> Nullable<Uuid>,
        withdrawn_by_fingerprint -> Nullable<Text>,
    }
}

diesel::table! {
    artifacts (id) {
        id -> Uuid,
        version_id -> Uuid,
        artifact_type -> Text,
        platform -> Text,
        download_url -> Text,
        sha256 -> Nullable<Text>,
        size -> Nullable<Int8>,
        created_at -> Timestamptz,
        created_by -> Uuid,
        created_by_fingerprint -> Text,
    }
}

diesel::table! {
    catalogue_state (singleton) {
        singleton -> Bool,
        generation -> Int8,
    }
}

diesel::joinable!(artifacts -> versions (version_id));
diesel::allow_tables_to_appear_in_same_query!(versions, artifacts, catalogue_state);
