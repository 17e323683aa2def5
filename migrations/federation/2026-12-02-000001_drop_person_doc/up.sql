-- The hot read is now a statement the service keeps prepared; the PL/pgSQL wrapper cost more
-- (an executor start and an init-plan per call) than it saved.
DROP FUNCTION person_doc(text);
