-- Resource counts per server and type, kept by triggers in the same transaction as the write,
-- so an unfiltered list answers totalResults without counting every row.
CREATE TABLE resource_counts (
    server_id     TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (server_id, resource_type)
) WITHOUT ROWID;

INSERT INTO resource_counts (server_id, resource_type, n)
    SELECT server_id, resource_type, count(*) FROM resources GROUP BY server_id, resource_type;

CREATE TRIGGER resources_count_insert AFTER INSERT ON resources BEGIN
    INSERT INTO resource_counts (server_id, resource_type, n) VALUES (NEW.server_id, NEW.resource_type, 1)
        ON CONFLICT (server_id, resource_type) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER resources_count_delete AFTER DELETE ON resources BEGIN
    UPDATE resource_counts SET n = n - 1 WHERE server_id = OLD.server_id AND resource_type = OLD.resource_type;
END;
