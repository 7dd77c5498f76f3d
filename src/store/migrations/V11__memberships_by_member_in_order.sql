-- A member's groups are listed in the order they were joined (`seq`). With `seq` after the
-- member id the index yields them in that order, so reading a user no longer sorts its groups
-- in a temporary B-tree; the group id stays in the index, which still covers the lookup.
DROP INDEX memberships_by_member;
CREATE INDEX memberships_by_member ON memberships (server_id, member_id, seq, group_id);
