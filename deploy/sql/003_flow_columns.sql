-- SPDX-License-Identifier: GPL-2.0-only
-- ztagent schema, migration 003: the specified columns of network_flows
-- with the specification's types, nullability and defaults, converted in
-- place (one ALTER TABLE, one rewrite of each partition, inside the
-- migration's transaction: every row is kept, once, or nothing changes).
--
--   id            UUID, DEFAULT gen_random_uuid() (the agent still sends
--                 its UUIDv7; the default serves rows inserted by hand)
--   protocol      TEXT -> SMALLINT NOT NULL, the IANA protocol number:
--                 'tcp' 6, 'udp' 17, 'icmp' 1, 'icmpv6' 58, 'sctp' 132, a
--                 decimal number as it is, 'any' (an XDP drop aggregate over
--                 several protocols) 255, which IANA reserves
--   source_port,  NULL (no ports) -> 0, NOT NULL
--   dest_port
--   packet_count  BIGINT -> INTEGER NOT NULL DEFAULT 0, saturated at
--                 2147483647; packets_sent and packets_received stay BIGINT
--   duration_ms   BIGINT -> INTEGER NOT NULL DEFAULT 0, saturated likewise
--   flags         TEXT[], nullable, no default
--   end_time      nullable
--   threat_type   TEXT -> VARCHAR(50) (longer text is cut to 50 characters)
--   blocked       BOOLEAN DEFAULT FALSE, nullable
-- and protocol_name, generated from protocol, for people.
--
-- The conversion takes an ACCESS EXCLUSIVE lock on network_flows while it
-- rewrites it: agents keep their records in their queues and spools
-- meanwhile. Agents older than this migration cannot write into the new
-- types (their batches are refused and kept in their rejected-*.zsp); see
-- the README's upgrade note.

-- The name of an IP protocol number, as the agent prints it.
CREATE FUNCTION zt_protocol_name(p smallint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE p
		WHEN 6 THEN 'tcp' WHEN 17 THEN 'udp' WHEN 1 THEN 'icmp'
		WHEN 58 THEN 'icmpv6' WHEN 132 THEN 'sctp' WHEN 255 THEN 'any'
		ELSE p::text END
$$;

-- The conversion of the old protocol text; anything else stops the
-- migration (nothing is changed) with the row named.
CREATE FUNCTION zt_migrate_003_protocol(t text, row_id uuid) RETURNS smallint
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	CASE lower(t)
	WHEN 'tcp' THEN RETURN 6;
	WHEN 'udp' THEN RETURN 17;
	WHEN 'icmp' THEN RETURN 1;
	WHEN 'icmpv6' THEN RETURN 58;
	WHEN 'sctp' THEN RETURN 132;
	WHEN 'any' THEN RETURN 255;
	ELSE
		IF t ~ '^[0-9]{1,3}$' AND t::integer <= 255 THEN
			RETURN t::smallint;
		END IF;
	END CASE;
	RAISE EXCEPTION 'migration 003: network_flows row id % has protocol %, which is neither a protocol name nor a number 0-255',
		row_id, quote_literal(t)
		USING HINT = 'Correct or delete that row, then start the agent again.';
END
$$;

ALTER TABLE network_flows
	ALTER COLUMN id SET DEFAULT gen_random_uuid(),
	ALTER COLUMN protocol TYPE smallint USING zt_migrate_003_protocol(protocol, id),
	ALTER COLUMN source_port TYPE integer USING coalesce(source_port, 0),
	ALTER COLUMN source_port SET NOT NULL,
	ALTER COLUMN dest_port TYPE integer USING coalesce(dest_port, 0),
	ALTER COLUMN dest_port SET NOT NULL,
	ALTER COLUMN packet_count TYPE integer USING least(greatest(packet_count, 0), 2147483647),
	ALTER COLUMN duration_ms TYPE integer USING least(greatest(duration_ms, 0), 2147483647),
	ALTER COLUMN flags DROP NOT NULL,
	ALTER COLUMN flags DROP DEFAULT,
	ALTER COLUMN end_time DROP NOT NULL,
	ALTER COLUMN threat_type TYPE varchar(50) USING left(threat_type, 50),
	ALTER COLUMN blocked DROP NOT NULL,
	ADD CONSTRAINT network_flows_protocol_check CHECK (protocol BETWEEN 0 AND 255),
	ADD COLUMN protocol_name text GENERATED ALWAYS AS (zt_protocol_name(protocol)) STORED;

DROP FUNCTION zt_migrate_003_protocol(text, uuid);
