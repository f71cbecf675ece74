# shellcheck shell=bash
# A throw-away PostgreSQL for tests and benches. Source it and call
# pg_start: initdb as the postgres user in a temporary directory, a unix
# socket in that directory only (listen_addresses=''), a port no one
# listens on. The caller's EXIT trap, set before pg_start, calls pg_cleanup
# (pg_start leaves traps alone). pg_cleanup stops the server (fast, then
# immediate, then SIGKILL of the postmaster PID) and removes the directory,
# also when the caller failed; before pg_start it does nothing.
#   PG_DIR   the directory (socket, data/, log)
#   PG_PORT  the port (names the socket: $PG_DIR/.s.PGSQL.$PG_PORT)
#   PG_CONN  a libpq conninfo for it, database postgres, user postgres
#   PG_PID   the postmaster's PID while it runs

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=
PG_PORT=
PG_CONN=
PG_PID=

pg_as() { runuser -u postgres -- "$@"; }

pg_free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		if ! ss -Hln 2>/dev/null | grep -q ":$p\b" && ! ls /tmp/.s.PGSQL."$p" >/dev/null 2>&1; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

pg_start() {
	PG_DIR=$(mktemp -d /tmp/ztagent-pg.XXXXXX) || return 1
	chown postgres: "$PG_DIR"
	chmod 700 "$PG_DIR"
	PG_PORT=$(pg_free_port) || {
		echo "# pg_start: no free port" >&2
		return 1
	}
	if ! pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C \
		--no-sync >"$PG_DIR/initdb.log" 2>&1; then
		echo "# pg_start: initdb failed:" >&2
		sed 's/^/#   /' "$PG_DIR/initdb.log" >&2
		return 1
	fi
	PG_CONN="host=$PG_DIR port=$PG_PORT user=postgres dbname=postgres"
	pg_up
}

# Starts the server of an initialised PG_DIR (again, after pg_down).
pg_up() {
	if ! pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 30 \
		-o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -p $PG_PORT" \
		start >/dev/null; then
		echo "# pg_up: the server did not start; its log:" >&2
		tail -n 20 "$PG_DIR/log" | sed 's/^/#   /' >&2
		return 1
	fi
	PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
}

# Stops the server (fast: sessions are cut, like a database going away).
pg_down() {
	[ -n "$PG_PID" ] || return 0
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null
	PG_PID=
}

pg_stop() {
	pg_cleanup_server
}

pg_cleanup_server() {
	if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
		pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 20 stop >/dev/null 2>&1 ||
			pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 10 stop >/dev/null 2>&1
		if kill -0 "$PG_PID" 2>/dev/null; then
			kill -KILL "$PG_PID" 2>/dev/null
		fi
	fi
	PG_PID=
}

pg_cleanup() {
	local rc=$?
	set +e
	pg_cleanup_server
	[ -n "$PG_DIR" ] && [ -d "$PG_DIR" ] && rm -rf "$PG_DIR"
	PG_DIR=
	return $rc
}

# psql on the test server: quiet, unaligned, tuples only, stop on error.
pg_sql() { psql "$PG_CONN" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
