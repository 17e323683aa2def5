-- The record as clients see it (document + id, roles, active; never the hash), for the hot
-- `GET /people/{id}` path. A PL/pgSQL function keeps its plan for the session, and calling it
-- is a statement the client can keep prepared, so a read costs neither parse nor plan.
CREATE FUNCTION person_doc(p_id text) RETURNS text
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (
        SELECT (p.data || jsonb_build_object('id', p.id, 'roles', to_jsonb(p.roles), 'active', p.active))::text
        FROM federation.people AS p
        WHERE p.id = p_id
    );
END
$$;
