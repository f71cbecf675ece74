-- SPDX-License-Identifier: GPL-2.0-only
-- ztagent schema, migration 001: tables. Applied by the agent at start
-- (zt_db_migrate: one transaction, pg_advisory_xact_lock, recorded in
-- schema_migrations with the SHA-256 of this text). src/dbschema.c holds
-- the same text; tests/unit/test_dbschema.c checks that they are equal.

-- One row per flow (or per aggregate of XDP drops), partitioned by month
-- on start_time. Partitions are created by zt_flows_ensure_partitions()
-- (migration 002), ahead of time and on demand by the writer.
CREATE TABLE network_flows (
	id               UUID        NOT NULL,       -- UUIDv7 made by the agent when the record is created
	source_ip        INET        NOT NULL,
	dest_ip          INET        NOT NULL,
	source_port      INTEGER     CHECK (source_port BETWEEN 0 AND 65535), -- NULL: no ports
	dest_port        INTEGER     CHECK (dest_port BETWEEN 0 AND 65535),
	protocol         TEXT        NOT NULL,       -- 'tcp' 'udp' 'icmp' 'icmpv6' 'sctp' or the IP protocol number in decimal
	bytes_sent       BIGINT      NOT NULL DEFAULT 0, -- source -> destination
	bytes_received   BIGINT      NOT NULL DEFAULT 0, -- destination -> source
	packet_count     BIGINT      NOT NULL DEFAULT 0, -- both directions
	duration_ms      BIGINT      NOT NULL DEFAULT 0,
	flags            TEXT[]      NOT NULL DEFAULT '{}', -- TCP flags seen: FIN SYN RST PSH ACK URG ECE CWR
	start_time       TIMESTAMPTZ NOT NULL,
	end_time         TIMESTAMPTZ NOT NULL,
	anomaly_score    REAL,
	threat_type      TEXT,
	blocked          BOOLEAN     NOT NULL DEFAULT false,
	created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
	-- Metadata.
	packets_sent     BIGINT      NOT NULL DEFAULT 0,
	packets_received BIGINT      NOT NULL DEFAULT 0,
	verdict          TEXT,                       -- 'allowed' 'denied' 'audit' 'dropped'
	drop_reason      TEXT,
	policy           TEXT,                       -- 'policy/rule' that decided, or 'default-deny'
	source_identity  BIGINT,
	dest_identity    BIGINT,
	source_workload  TEXT,
	dest_workload    TEXT,
	node             TEXT        NOT NULL,
	interface        TEXT,
	direction        TEXT,                       -- 'ingress' 'egress'
	flow_kind        TEXT        NOT NULL DEFAULT 'flow'
		CHECK (flow_kind IN ('flow', 'xdp_drop_aggregate')),
	aggregate_count  BIGINT      NOT NULL DEFAULT 1, -- flows/drops this row stands for
	PRIMARY KEY (id, start_time)
) PARTITION BY RANGE (start_time);

CREATE INDEX network_flows_src_time ON network_flows (source_ip, start_time);
CREATE INDEX network_flows_dst_time ON network_flows (dest_ip, start_time);
CREATE INDEX network_flows_threat_time ON network_flows (threat_type, start_time)
	WHERE threat_type IS NOT NULL;
CREATE INDEX network_flows_verdict_time ON network_flows (verdict, start_time);

CREATE TABLE alerts (
	id          UUID        PRIMARY KEY,         -- UUIDv7
	at          TIMESTAMPTZ NOT NULL,
	node        TEXT        NOT NULL,
	severity    TEXT        NOT NULL,
	kind        TEXT        NOT NULL,            -- 'policy-deny' 'scan' 'flood' 'anomaly' ...
	source_ip   INET,
	dest_ip     INET,
	dest_port   INTEGER,
	protocol    TEXT,
	flow_id     UUID,
	detail      JSONB       NOT NULL DEFAULT '{}'
);
CREATE INDEX alerts_at ON alerts (at);
CREATE INDEX alerts_source_at ON alerts (source_ip, at);

CREATE TABLE blocks (
	id          UUID        PRIMARY KEY,         -- UUIDv7
	at          TIMESTAMPTZ NOT NULL,
	node        TEXT        NOT NULL,
	action      TEXT        NOT NULL CHECK (action IN ('block', 'unblock', 'expire')),
	cidr        CIDR        NOT NULL,
	kind        TEXT,
	source      TEXT,
	reason      TEXT,
	expires_at  TIMESTAMPTZ
);
CREATE INDEX blocks_cidr_at ON blocks (cidr, at);

-- Append-only and hash-chained (src/audit.c):
--   hash = SHA-256(prev_hash || canonical(seq, at, kind, actor, subject, detail))
-- detail is JSON (not JSONB): the text is kept byte for byte, so the hash
-- can be recomputed from what is stored.
CREATE TABLE audit_log (
	seq         BIGINT      PRIMARY KEY CHECK (seq > 0),
	at          TIMESTAMPTZ NOT NULL,
	kind        TEXT        NOT NULL,
	actor       TEXT        NOT NULL,
	subject     TEXT        NOT NULL,
	detail      JSON        NOT NULL,
	prev_hash   BYTEA       NOT NULL CHECK (length(prev_hash) = 32),
	hash        BYTEA       NOT NULL CHECK (length(hash) = 32)
);

CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
		USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();
