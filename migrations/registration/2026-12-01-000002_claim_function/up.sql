-- The worker's claim as a function: PL/pgSQL keeps the plan for the session, so claiming a row
-- costs no parse and plan (the claim runs once per message sent).
CREATE FUNCTION claim_next_delivery()
RETURNS TABLE (id bigint, broadcast_id uuid, registration_id uuid, email text, attempts integer,
               title text, contents text, active boolean)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    SELECT d.id, d.broadcast_id, d.registration_id, d.email, d.attempts, b.title, b.contents, r.active
    FROM deliveries d
    JOIN broadcasts b ON b.id = d.broadcast_id
    JOIN registrations r ON r.id = d.registration_id
    WHERE d.state = 'queued' AND d.next_attempt_at <= now()
    ORDER BY d.next_attempt_at, d.id
    LIMIT 1
    FOR UPDATE OF d SKIP LOCKED;
END
$$;
