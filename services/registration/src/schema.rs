//! The `registration` schema, written by hand to match `migrations/registration`.

diesel::table! {
    registrations (id) {
        id -> Uuid,
        email -> Text,
        version -> Text,
        distribution -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        unsubscribed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    broadcasts (id) {
        id -> Uuid,
        title -> Text,
        contents -> Text,
        sent_by -> Text,
        client_ip -> Nullable<Text>,
        recipients -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Int8,
        broadcast_id -> Uuid,
        registration_id -> Uuid,
        email -> Text,
        state -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    usage_reports (id) {
        id -> Int8,
        site_id -> Uuid,
        reporting_interval -> Text,
        version -> Text,
        distribution -> Nullable<Text>,
        environment -> Nullable<Text>,
        locale -> Nullable<Text>,
        time_zone -> Nullable<Text>,
        records -> Int4,
        document -> Jsonb,
        client_ip -> Nullable<Text>,
        received_at -> Timestamptz,
    }
}

diesel::joinable!(deliveries -> broadcasts (broadcast_id));
diesel::joinable!(deliveries -> registrations (registration_id));
diesel::allow_tables_to_appear_in_same_query!(registrations, broadcasts, deliveries, usage_reports);
