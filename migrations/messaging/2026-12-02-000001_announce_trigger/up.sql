-- New messages are announced on `messaging_new_message` by the insert itself: one statement and
-- one commit per message instead of an insert and a separate `SELECT pg_notify(...)`. The payload
-- is what the listeners need to route the notice: the message's id and receiver. Postgres
-- delivers it when the inserting transaction commits.
CREATE FUNCTION announce_message() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('messaging_new_message', json_build_object('uuid', NEW.uuid, 'receiver', NEW.receiver)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_announce AFTER INSERT ON messages FOR EACH ROW EXECUTE FUNCTION announce_message();
