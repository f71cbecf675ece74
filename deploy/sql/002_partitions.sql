-- SPDX-License-Identifier: GPL-2.0-only
-- ztagent schema, migration 002: monthly partitions of network_flows.
-- Partitions are named network_flows_pYYYYMM and cover
-- [first of the month 00:00 UTC, first of the next month).

-- Creates the partitions for every month from the one holding lo to the one
-- holding hi (at most 120 months at a time). Returns how many it created.
CREATE FUNCTION zt_flows_ensure_partitions(lo timestamptz, hi timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	m timestamp := date_trunc('month', lo AT TIME ZONE 'UTC');
	last timestamp := date_trunc('month', hi AT TIME ZONE 'UTC');
	name text;
	made integer := 0;
BEGIN
	IF lo IS NULL OR hi IS NULL THEN
		RETURN 0;
	END IF;
	IF last < m THEN
		RAISE EXCEPTION 'zt_flows_ensure_partitions: hi % is before lo %', hi, lo;
	END IF;
	IF last > m + interval '120 months' THEN
		RAISE EXCEPTION 'zt_flows_ensure_partitions: % .. % spans more than 120 months', lo, hi;
	END IF;
	WHILE m <= last LOOP
		name := 'network_flows_p' || to_char(m, 'YYYYMM');
		IF to_regclass(quote_ident(name)) IS NULL THEN
			-- Serialises creators (agents on several nodes) of this partition.
			PERFORM pg_advisory_xact_lock(hashtext('ztagent.partition.' || name));
			IF to_regclass(quote_ident(name)) IS NULL THEN
				EXECUTE format('CREATE TABLE %I PARTITION OF network_flows '
					       'FOR VALUES FROM (%L) TO (%L)', name,
					       (m AT TIME ZONE 'UTC'),
					       ((m + interval '1 month') AT TIME ZONE 'UTC'));
				made := made + 1;
			END IF;
		END IF;
		m := m + interval '1 month';
	END LOOP;
	RETURN made;
END
$$;

-- Drops the partitions that end before the start of the month
-- retention_months before the current one: with retention 12 in November
-- 2026, October 2025 and older go; November 2025 stays. Returns the names
-- it dropped. Only tables named network_flows_pYYYYMM attached to
-- network_flows are considered.
CREATE FUNCTION zt_flows_drop_old(retention_months integer, now_ts timestamptz DEFAULT now())
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	cutoff timestamp;
	r record;
BEGIN
	IF retention_months IS NULL OR retention_months < 1 THEN
		RAISE EXCEPTION 'zt_flows_drop_old: retention_months must be >= 1, got %',
			retention_months;
	END IF;
	cutoff := date_trunc('month', now_ts AT TIME ZONE 'UTC')
		  - make_interval(months => retention_months);
	FOR r IN
		SELECT c.relname AS name
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'network_flows'::regclass
		  AND c.relname ~ '^network_flows_p[0-9]{6}$'
		  AND to_date(substr(c.relname, 16), 'YYYYMM')::timestamp < cutoff
		ORDER BY c.relname
	LOOP
		EXECUTE format('DROP TABLE %I', r.name);
		RETURN NEXT r.name;
	END LOOP;
END
$$;

-- Periodic maintenance: the current month and the next ahead_months exist,
-- and partitions past retention are dropped.
CREATE FUNCTION zt_flows_maintain(retention_months integer, ahead_months integer DEFAULT 2)
RETURNS TABLE (created integer, dropped text[]) LANGUAGE plpgsql AS $$
BEGIN
	created := zt_flows_ensure_partitions(now(),
					      now() + make_interval(months => ahead_months));
	dropped := ARRAY(SELECT zt_flows_drop_old(retention_months));
	RETURN NEXT;
END
$$;

SELECT zt_flows_ensure_partitions(now(), now() + interval '2 months');
