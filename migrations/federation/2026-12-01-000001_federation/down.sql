DROP TABLE audit;
DROP TABLE institutions;
DROP TABLE domiciliary_units;
DROP TABLE personal_docs;
DROP TABLE pols;
DROP TABLE people;
