-- SPDX-License-Identifier: GPL-2.0-only
-- ztagent schema, migration 008: since when each node has had each policy
-- in audit mode, as the agent saw it (not the policy file's modification
-- time, which any edit or checkout resets). The agent keeps it with
-- node_policies (src/agent/daemon_nodes.c): a row appears when a policy in
-- force is first seen in audit mode and goes when the policy is enforced or
-- removed; a restart or an edit that keeps the mode keeps the row.
-- `ztctl compliance report` measures audit-mode age from it (ZT-SEG-005).

CREATE TABLE policy_audit_mode (
	node        TEXT        NOT NULL REFERENCES nodes (node) ON DELETE CASCADE,
	policy_key  TEXT        NOT NULL,                -- "Kind/namespace/name", as node_policies
	since       TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (node, policy_key)
);
