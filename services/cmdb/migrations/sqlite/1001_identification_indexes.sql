-- Identification rules on display_name with ignore_case compare
-- lower(trim(display_name)): without this index each such lookup read every CI.
CREATE INDEX cis_display_name_norm ON cis (lower(trim(display_name)));
