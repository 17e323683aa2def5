DROP TRIGGER messages_json_update ON messages;
DROP TRIGGER messages_json_insert ON messages;
ALTER TABLE messages DROP COLUMN json;
DROP FUNCTION fill_message_json();
DROP FUNCTION message_json(uuid, timestamptz, timestamptz, text, text, text, text, text, integer, text, uuid, text, text, text, text, text);
