DROP FUNCTION IF EXISTS claim_next_delivery();
