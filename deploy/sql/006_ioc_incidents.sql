-- SPDX-License-Identifier: GPL-2.0-only
-- ztagent schema, migration 006: incidents of threat type 'ioc'.
--
-- A pod's connection to a destination a threat-intelligence feed lists
-- (src/feeds) is an incident like a detector's: one per (pod, IOC) while
-- it is active, its counts growing with every hit (src/respond/engine.h,
-- zt_engine_on_ioc). Its workload is the pod, dest_ip the address that
-- matched, subtype the feed, and evidence names the IOC and the feed's own
-- reference (malware family, STIX indicator id, ...).
ALTER TABLE incidents DROP CONSTRAINT IF EXISTS incidents_threat_type_check;
ALTER TABLE incidents ADD CONSTRAINT incidents_threat_type_check
	CHECK (threat_type IN ('scan', 'flood', 'bruteforce', 'slowconn',
			       'exfiltration', 'model', 'ioc'));
