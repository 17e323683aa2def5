// The `auth` schema, qualified, so it is reached whatever the connection's search_path.

diesel::table! {
    auth.devices (id) {
        id -> Uuid,
        key_data -> Bytea,
        fingerprint -> Text,
        role -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_seen_at -> Timestamptz,
    }
}

diesel::table! {
    auth.device_connections (id) {
        id -> Int8,
        device_id -> Uuid,
        created_at -> Timestamptz,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::joinable!(device_connections -> devices (device_id));
diesel::allow_tables_to_appear_in_same_query!(devices, device_connections);
