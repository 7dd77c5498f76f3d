-- The request and response bodies of a recorded request, as text beside its JSON entry instead
-- of strings inside it: a body is JSON itself, full of characters to escape, and escaping a
-- page of resources into its entry cost about a tenth of serving the page. Rows
-- written before this keep their bodies in `entry` (these columns are NULL there).
ALTER TABLE request_log ADD COLUMN request_body TEXT;
ALTER TABLE request_log ADD COLUMN response_body TEXT;
