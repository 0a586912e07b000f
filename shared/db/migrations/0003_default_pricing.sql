-- The default pricing rule set (version 1). Operators add versions; a version is never edited in place.
INSERT INTO pricing_rule_sets (pricing_version, status, note, activated_at)
VALUES (1, 'active', 'default markups', now());

INSERT INTO pricing_rules (pricing_version, priority, name, stone_type, carats_min, carats_max,
                           cost_min_cents, cost_max_cents, markup_percent, markup_cents) VALUES
    (1,   10, 'lab-grown under $1,000',   'lab_grown', NULL, NULL, NULL,   100000, 60,  0),
    (1,   20, 'lab-grown',                'lab_grown', NULL, NULL, NULL,   NULL,   35,  0),
    (1,   30, 'fancy colour',             'fancy',     NULL, NULL, NULL,   NULL,   25,  0),
    (1,   40, 'natural under 0.50 ct',    'natural',   NULL, 0.50, NULL,   NULL,   30,  5000),
    (1,   50, 'natural 0.50 to 2 ct',     'natural',   0.50, 2.00, NULL,   NULL,   20,  0),
    (1,   60, 'natural 2 ct and over',    'natural',   2.00, NULL, NULL,   NULL,   15,  0),
    (1, 1000, 'everything else',          NULL,        NULL, NULL, NULL,   NULL,   25,  0);
