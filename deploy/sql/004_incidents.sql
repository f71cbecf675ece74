-- SPDX-License-Identifier: GPL-2.0-only
-- ztagent schema, migration 004: incidents, the forensic capture index,
-- and alerts that stand for many events.
--
-- incidents: one row per (subject address, threat type) while it is
-- active (src/respond/incident.h). The agent writes each state of an
-- incident (open, updates while it grows, close) as an audit event and,
-- in the same transaction, upserts the row here by its id (UUIDv7, made
-- by the agent); a state only replaces one with a lower version, so a
-- replay or a late batch never turns a row back.
CREATE TABLE incidents (
	id                 UUID        PRIMARY KEY,
	node               TEXT        NOT NULL,
	threat_type        VARCHAR(50) NOT NULL
		CHECK (threat_type IN ('scan', 'flood', 'bruteforce', 'slowconn',
				       'exfiltration', 'model')),
	detector           TEXT        NOT NULL,
	role               TEXT        NOT NULL CHECK (role IN ('source', 'destination')),
	subtype            TEXT,                       -- 'horizontal', 'syn', 'unanswered', ...
	state              TEXT        NOT NULL CHECK (state IN ('open', 'closed')),
	source_ip          INET,                       -- the offender (NULL for a victim-only incident)
	dest_ip            INET,                       -- the target, or the victim
	dest_port          INTEGER     CHECK (dest_port BETWEEN 0 AND 65535),
	protocol           SMALLINT,                   -- IANA number
	workload           TEXT,                       -- exfiltration: the local workload
	first_seen         TIMESTAMPTZ NOT NULL,
	last_seen          TIMESTAMPTZ NOT NULL,
	closed_at          TIMESTAMPTZ,
	close_reason       TEXT,
	window_start       TIMESTAMPTZ NOT NULL,       -- start of what the first evidence covers
	flows              BIGINT      NOT NULL DEFAULT 0,
	packets            BIGINT      NOT NULL DEFAULT 0,
	bytes              BIGINT      NOT NULL DEFAULT 0,
	drops              BIGINT      NOT NULL DEFAULT 0, -- its packets dropped by the XDP block
	decisions          BIGINT      NOT NULL DEFAULT 1,
	score              REAL        CHECK (score BETWEEN 0 AND 1),
	action             TEXT        NOT NULL
		CHECK (action IN ('none', 'alert', 'block', 'already', 'refused')),
	action_reason      TEXT,
	mode               TEXT        NOT NULL CHECK (mode IN ('off', 'alert', 'block')),
	blocked            CIDR,                       -- what was blocked (or refused)
	block_ttl_s        BIGINT,
	blocked_until      TIMESTAMPTZ,
	capture_path       TEXT,                       -- the current forensic capture file
	evidence           JSONB       NOT NULL,       -- the whole state as the agent posted it
	version            BIGINT      NOT NULL,
	updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX incidents_source_seen ON incidents (source_ip, first_seen);
CREATE INDEX incidents_threat_seen ON incidents (threat_type, first_seen);
CREATE INDEX incidents_open ON incidents (last_seen) WHERE state = 'open';

-- One row per capture file (src/respond/forensics.h): where it is, which
-- incident it belongs to, how big it is, and whether it is still on disk.
CREATE TABLE forensic_captures (
	path               TEXT        NOT NULL,
	node               TEXT        NOT NULL,
	incident_id        UUID        NOT NULL,       -- no foreign key: the two rows may come in either order
	part               INTEGER     NOT NULL,
	state              TEXT        NOT NULL CHECK (state IN ('open', 'closed', 'removed')),
	bytes              BIGINT      NOT NULL DEFAULT 0,
	packets            BIGINT      NOT NULL DEFAULT 0,
	first_packet       TIMESTAMPTZ,
	last_packet        TIMESTAMPTZ,
	opened_at          TIMESTAMPTZ NOT NULL,
	closed_at          TIMESTAMPTZ,
	removed_at         TIMESTAMPTZ,
	PRIMARY KEY (node, path)
);
CREATE INDEX forensic_captures_incident ON forensic_captures (incident_id);

-- An alert may stand for many events: an incident (its id is the
-- incident's) or a window of policy denials of one source, destination,
-- port and rule. count is how many; last_at the latest.
ALTER TABLE alerts
	ADD COLUMN count BIGINT NOT NULL DEFAULT 1,
	ADD COLUMN last_at TIMESTAMPTZ,
	ADD COLUMN incident_id UUID;
CREATE INDEX alerts_incident ON alerts (incident_id) WHERE incident_id IS NOT NULL;

-- The flows of an incident, for an investigator: every network_flows row
-- of its subject in its window (from the start of its first evidence to
-- its last activity, or now while it is open). For an exfiltration
-- incident these are all the flows of its workload (source_workload),
-- whichever destination; otherwise the flows from (or, for a victim, to)
-- its address.
--   SELECT * FROM zt_incident_flows('0191e7a4-...');
CREATE FUNCTION zt_incident_flows(incident uuid) RETURNS SETOF network_flows
LANGUAGE sql STABLE AS $$
	SELECT f.*
	FROM incidents i
	JOIN network_flows f
	  ON f.start_time >= i.window_start - interval '1 minute'
	 AND f.start_time <= coalesce(i.closed_at, now())
	 AND f.node = i.node
	 AND CASE
		WHEN i.threat_type = 'exfiltration' AND i.workload IS NOT NULL
			THEN f.source_workload = i.workload
		WHEN i.role = 'destination' THEN f.dest_ip = i.dest_ip
		ELSE f.source_ip = i.source_ip
	     END
	WHERE i.id = incident
	ORDER BY f.start_time
$$;
