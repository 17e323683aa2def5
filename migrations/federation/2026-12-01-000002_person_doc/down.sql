DROP FUNCTION person_doc(text);
