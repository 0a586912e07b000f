-- The `pricing` scope (issue 13): the operator endpoints under /api/v1/pricing need it, for reading as well
-- as for changing (rules, previews and quotes show costs and margins). It is separate from `admin`, so an
-- operations engineer need not be able to change prices, and a partner's search key never prices anything.
ALTER TABLE api_clients DROP CONSTRAINT api_clients_scopes_check;
ALTER TABLE api_clients ADD CONSTRAINT api_clients_scopes_check
    CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['search', 'admin', 'pricing']);
