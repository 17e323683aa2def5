//! The `messaging` schema, written by hand to match migrations/messaging.

diesel::table! {
    messages (uuid) {
        uuid -> Uuid,
        created -> Timestamptz,
        modified -> Timestamptz,
        created_by -> Text,
        sender -> Text,
        sender_type -> Text,
        receiver -> Text,
        receiver_type -> Text,
        message_type -> Int4,
        content -> Text,
        related_message -> Nullable<Uuid>,
        retrieved -> Nullable<Timestamptz>,
        retrieved_text -> Nullable<Text>,
        confirmed -> Nullable<Timestamptz>,
        confirmed_text -> Nullable<Text>,
        confirmed_by -> Nullable<Text>,
        cancelled -> Nullable<Timestamptz>,
        cancelled_text -> Nullable<Text>,
        cancelled_by -> Nullable<Text>,
        /// The message as the API answers it, rendered from the columns above.
        json -> Text,
    }
}

diesel::table! {
    devices (uuid) {
        uuid -> Uuid,
        created -> Timestamptz,
        modified -> Timestamptz,
        created_by -> Text,
        location_id -> Text,
        description -> Text,
        active -> Bool,
    }
}

diesel::table! {
    clinicians (clinician_id) {
        clinician_id -> Text,
        created -> Timestamptz,
        modified -> Timestamptz,
        login_active -> Bool,
        products -> Jsonb,
        groups -> Jsonb,
        locations -> Jsonb,
        send_entry_identifier -> Nullable<Text>,
        contract_expiry_eod_date -> Nullable<Date>,
    }
}

diesel::table! {
    activations (uuid) {
        uuid -> Uuid,
        kind -> Text,
        subject_id -> Text,
        created -> Timestamptz,
        created_by -> Text,
        expires_at -> Timestamptz,
        code_lookup -> Text,
        code_hash -> Text,
        otp_hash -> Nullable<Text>,
        otp_serial -> Int4,
        failed_attempts -> Int4,
        completed -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    authorisation_codes (uuid) {
        uuid -> Uuid,
        activation_id -> Uuid,
        kind -> Text,
        subject_id -> Text,
        created -> Timestamptz,
        expires_at -> Timestamptz,
        code_lookup -> Text,
        code_hash -> Text,
        used -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    login_audit (id) {
        id -> Int8,
        at -> Timestamptz,
        kind -> Text,
        subject_id -> Nullable<Text>,
        success -> Bool,
        reason -> Text,
        client_ip -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (caller, route, key) {
        caller -> Text,
        route -> Text,
        key -> Text,
        fingerprint -> Text,
        status -> Int4,
        body -> Jsonb,
        created -> Timestamptz,
    }
}

diesel::joinable!(authorisation_codes -> activations (activation_id));
diesel::allow_tables_to_appear_in_same_query!(messages, devices, clinicians, activations, authorisation_codes);
