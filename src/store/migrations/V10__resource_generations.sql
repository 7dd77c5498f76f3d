-- A generation per server and resource type that changes whenever one of its resources is
-- deleted. While it stays the same, a resource's position in insertion order does not change
-- (new resources take a larger seq than every other), so list paging can remember where each
-- stretch of positions starts (store/anchors.rs). It starts random, so that a count row made
-- again (a new database at the same path) never looks like an old one.
ALTER TABLE resource_counts ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
UPDATE resource_counts SET generation = random();

DROP TRIGGER resources_count_insert;
CREATE TRIGGER resources_count_insert AFTER INSERT ON resources BEGIN
    INSERT INTO resource_counts (server_id, resource_type, n, generation)
        VALUES (NEW.server_id, NEW.resource_type, 1, random())
        ON CONFLICT (server_id, resource_type) DO UPDATE SET n = n + 1;
END;

DROP TRIGGER resources_count_delete;
CREATE TRIGGER resources_count_delete AFTER DELETE ON resources BEGIN
    UPDATE resource_counts SET n = n - 1, generation = generation + 1
        WHERE server_id = OLD.server_id AND resource_type = OLD.resource_type;
END;
