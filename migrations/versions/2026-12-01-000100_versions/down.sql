DROP TABLE catalogue_state;
DROP TABLE artifacts;
DROP TABLE versions;
