DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS login_audit;
DROP TABLE IF EXISTS authorisation_codes;
DROP TABLE IF EXISTS activations;
DROP TABLE IF EXISTS clinicians;
DROP TABLE IF EXISTS devices;
DROP TABLE IF EXISTS messages;
