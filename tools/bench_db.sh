#!/usr/bin/env bash
# The database bench: a throw-away PostgreSQL (tools/pg.sh), then
# build/tools/bench_db (rows/s of the flow writer vs psql \copy of the same
# rows). Everything it starts and creates is removed on exit.
#   tools/bench_db.sh [ROWS]      default 200000
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tools/pg.sh
n=${1:-200000}
[ -x build/tools/bench_db ] || make -s --no-print-directory build/tools/bench_db || exit 1
BT=$(mktemp -d /tmp/ztagent-benchdb.XXXXXX)
chmod 755 "$BT"
cleanup() {
	local rc=$?
	pg_cleanup
	rm -rf "$BT"
	exit $rc
}
trap cleanup EXIT
pg_start || exit 1
build/tools/bench_db "$PG_CONN" "$BT/spool" "$n" "$BT"
