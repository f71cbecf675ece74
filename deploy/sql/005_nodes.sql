-- SPDX-License-Identifier: GPL-2.0-only
-- ztagent schema, migration 005: every agent's state, so that a cluster can
-- be compared (ztctl cluster status, ztctl policy diff --against NODE).
-- Each agent upserts its own row every 10 s (the heartbeat) and whenever its
-- policy changes; a row whose heartbeat is old belongs to a node that is
-- down or cut off from the database.

CREATE TABLE nodes (
	node            TEXT        PRIMARY KEY,
	version         TEXT        NOT NULL,            -- the agent's version
	started_at      TIMESTAMPTZ NOT NULL,
	last_heartbeat  TIMESTAMPTZ NOT NULL,
	-- SHA-256 (hex) of the canonical form of the policies in force
	-- (src/seg/polcanon.h): the same policies give the same hash, whatever
	-- files, order or formatting they came in. NULL: no valid policy yet.
	policy_sha256   TEXT        CHECK (policy_sha256 ~ '^[0-9a-f]{64}$'),
	policy_generation BIGINT    NOT NULL DEFAULT 0,
	policies        INTEGER     NOT NULL DEFAULT 0,
	policy_changed_at TIMESTAMPTZ,
	feed_versions   JSONB       NOT NULL DEFAULT '{}', -- {"feed": {"sha256": "...", "applied_unix": N}}
	endpoints       INTEGER     NOT NULL DEFAULT 0,
	cert_expires_at TIMESTAMPTZ,                      -- mtls.node_cert's notAfter; NULL without mTLS
	drift_repairs   BIGINT      NOT NULL DEFAULT 0
);
CREATE INDEX nodes_policy ON nodes (policy_sha256);

-- The canonical form of each policy in force per node, replaced as a whole
-- when the node's policy_sha256 changes.
CREATE TABLE node_policies (
	node        TEXT  NOT NULL REFERENCES nodes (node) ON DELETE CASCADE,
	policy_key  TEXT  NOT NULL,                      -- "Kind/namespace/name"
	sha256      TEXT  NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
	canonical   TEXT  NOT NULL,                      -- JSON, exactly the text that was hashed
	PRIMARY KEY (node, policy_key)
);
