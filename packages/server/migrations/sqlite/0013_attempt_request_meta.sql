-- An attempt keeps what its request headers are rebuilt from when read
-- (carehooks' version, the ids of the keys that signed it, the names of the
-- webhook's own headers: about 60 bytes), not the headers (about 400).
-- request_headers keeps the headers of the attempts made before, and is '{}'
-- for those made since (valid JSON for a process of the release before,
-- still running during a rolling upgrade).
ALTER TABLE attempt ADD COLUMN request_meta TEXT;
