-- SPDX-License-Identifier: GPL-2.0-only
-- ztagent schema, migration 007: workload mTLS in flow records (issue 14).
--
--   mtls              BOOLEAN NOT NULL DEFAULT FALSE: the flow was carried
--                     by the agents' mTLS tunnel (a policy requireMutualAuth
--                     or requireTLS rule, or mtls.mode strict), as the
--                     conntrack entry on the recording node says
--   source_spiffe_id  TEXT, nullable: the SPIFFE ID the client workload
--   dest_spiffe_id    proved (its X.509-SVID), and the server workload's;
--                     NULL when the flow was not tunnelled or the agent no
--                     longer remembered the connection (it keeps the
--                     identities of the last 4096 tunnelled connections)
--
-- Constant defaults: PostgreSQL adds the columns without rewriting the
-- partitions. Rows written before this migration read mtls = false.
ALTER TABLE network_flows
	ADD COLUMN IF NOT EXISTS mtls BOOLEAN NOT NULL DEFAULT FALSE,
	ADD COLUMN IF NOT EXISTS source_spiffe_id TEXT,
	ADD COLUMN IF NOT EXISTS dest_spiffe_id TEXT;
