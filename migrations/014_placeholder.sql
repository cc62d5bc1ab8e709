-- Placeholder: version 014 is another change's migration; this file only keeps the versions
-- contiguous (tern needs a statement, so it runs one that does nothing).
SELECT 1;
