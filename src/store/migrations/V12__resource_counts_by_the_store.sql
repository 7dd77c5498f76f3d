-- The counts (V2, V10) are kept by the store's own statements in the write's transaction
-- (store/mod.rs: `count_added`, `count_removed`) instead of by triggers. A trigger that writes
-- may fail halfway through its INSERT, so SQLite kept a statement journal for every create: a
-- copy of each page the create touched, about 8% of a create's CPU. The rows and their
-- meaning do not change.
DROP TRIGGER resources_count_insert;
DROP TRIGGER resources_count_delete;
