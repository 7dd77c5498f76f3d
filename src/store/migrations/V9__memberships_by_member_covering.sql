-- A member's groups (User.groups on every read of a user) come from this index alone: with
-- the group id in it, the lookup no longer visits a membership row per group.
DROP INDEX memberships_by_member;
CREATE INDEX memberships_by_member ON memberships (server_id, member_id, group_id);
