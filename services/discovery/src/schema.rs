// The `discovery` schema, written by hand to match migrations/discovery.

diesel::table! {
    discovery.servers (id) {
        id -> Uuid,
        name -> Nullable<Text>,
        host -> Text,
        kind -> Text,
        rank -> Nullable<Text>,
        listed -> Bool,
        device_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    discovery.statuses (id) {
        id -> Uuid,
        server_id -> Uuid,
        created_at -> Timestamptz,
        version -> Nullable<Text>,
        latency_ms -> Nullable<Int4>,
        error -> Nullable<Text>,
        extra -> Jsonb,
        device_id -> Nullable<Uuid>,
    }
}

diesel::joinable!(statuses -> servers (server_id));
diesel::allow_tables_to_appear_in_same_query!(servers, statuses);
