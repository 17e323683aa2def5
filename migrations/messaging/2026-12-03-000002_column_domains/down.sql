ALTER TABLE messages
    ALTER COLUMN sender TYPE text,
    ALTER COLUMN receiver TYPE text,
    ALTER COLUMN content TYPE text,
    ALTER COLUMN sender_type TYPE text,
    ALTER COLUMN receiver_type TYPE text,
    ALTER COLUMN message_type TYPE integer,
    ADD CONSTRAINT messages_sender_check CHECK (sender <> ''),
    ADD CONSTRAINT messages_receiver_check CHECK (receiver <> ''),
    ADD CONSTRAINT messages_content_check CHECK (content <> ''),
    ADD CONSTRAINT messages_sender_type_check CHECK (sender_type IN ('patient', 'clinician', 'location')),
    ADD CONSTRAINT messages_receiver_type_check CHECK (receiver_type IN ('patient', 'clinician', 'location')),
    ADD CONSTRAINT messages_message_type_check CHECK (message_type IN (0, 1, 2, 3, 5, 6, 7, 8, 9, 10));
DROP DOMAIN message_type_value;
DROP DOMAIN party_type;
DROP DOMAIN nonempty_text;
