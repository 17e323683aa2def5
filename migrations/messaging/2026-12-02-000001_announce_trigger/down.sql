DROP TRIGGER messages_announce ON messages;
DROP FUNCTION announce_message();
