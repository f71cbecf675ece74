#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Chains ztagent-cni after the node's primary CNI plugin, and keeps it there.
#
#   cni-install.sh install     copy the plugin binary; wait for the primary
#                              CNI's configuration; insert ztagent-cni into it
#   cni-install.sh watch       insert it again whenever the primary rewrites
#                              its configuration (every CNI_WATCH_INTERVAL s)
#   cni-install.sh uninstall   take ztagent-cni out again
#
# The primary configuration is the file the container runtime uses: the
# first by name of CNI_NET_DIR/*.conf, *.conflist, *.json. A .conflist gets
# ztagent-cni appended to its plugins (once: a list that has it is left
# alone, byte for byte); a single-plugin .conf/.json becomes a .conflist of
# [that plugin, ztagent-cni] under the same base name, and the old file
# goes. Files are replaced by rename, so a runtime never reads half of one.
# A file that is not a JSON object is never touched: install waits for it to
# be fixed (up to CNI_INSTALL_TIMEOUT seconds, 0 = forever).
#
# Environment (defaults for the DaemonSet's host mounts):
#   CNI_NET_DIR=/host/etc/cni/net.d  CNI_BIN_DIR=/host/opt/cni/bin
#   ZTAGENT_CNI_BIN=/usr/lib/ztagent/ztagent-cni   (the binary to install; absent: skip)
#   ZTAGENT_CNI_PLUGIN='{"type":"ztagent-cni"}'    (the entry appended)
#   CNI_WATCH_INTERVAL=5  CNI_INSTALL_TIMEOUT=0
# Needs jq. Logs one key=value line per event on stderr.
set -eu

NET_DIR=${CNI_NET_DIR:-/host/etc/cni/net.d}
BIN_DIR=${CNI_BIN_DIR:-/host/opt/cni/bin}
SRC_BIN=${ZTAGENT_CNI_BIN:-/usr/lib/ztagent/ztagent-cni}
PLUGIN=${ZTAGENT_CNI_PLUGIN:-'{"type":"ztagent-cni"}'}
INTERVAL=${CNI_WATCH_INTERVAL:-5}
TIMEOUT=${CNI_INSTALL_TIMEOUT:-0}

log() {
	level=$1 event=$2
	shift 2
	echo "ts=$(date -u +%Y-%m-%dT%H:%M:%SZ) level=$level event=$event $*" >&2
}

# The file a runtime picks: the first by name (as libcni's ConfFiles sorts).
primary() {
	for f in "$NET_DIR"/*.conf "$NET_DIR"/*.conflist "$NET_DIR"/*.json; do
		[ -f "$f" ] && echo "$f"
	done | LC_ALL=C sort | head -n 1
}

# jq program: the configuration with our plugin chained last (or as it is).
CHAIN='
def ours: type == "object" and .type == $p.type;
if type != "object" then error("not a JSON object")
elif has("plugins") then
	if (.plugins | type) != "array" then error("plugins is not a list")
	elif any(.plugins[]; ours) then .
	else .plugins += [$p] end
elif has("type") then
	(if has("cniVersion") then {cniVersion} else {} end)
	+ (if has("name") then {name} else {} end)
	+ {plugins: [del(.cniVersion, .name), $p]}
else error("neither a plugin list (plugins) nor a plugin (type)") end'

UNCHAIN='
if type == "object" and (.plugins | type) == "array"
then .plugins |= map(select(type != "object" or .type != $p.type)) else . end'

# Writes stdin to $1 by rename; a temporary name no runtime reads (dot file).
replace() {
	dir=$(dirname "$1")
	tmp="$dir/.ztagent-cni.$$"
	cat >"$tmp"
	chmod 0644 "$tmp"
	mv -f "$tmp" "$1"
}

# Inserts into the primary configuration. 0: in place (changed or not);
# 1: nothing to insert into yet (none, or not usable).
insert() {
	f=$(primary)
	if [ -z "$f" ]; then
		return 1
	fi
	if ! new=$(jq --argjson p "$PLUGIN" "$CHAIN" "$f" 2>&1); then
		log warn cni_conf_unusable "file=$f" "why=\"$(echo "$new" | tail -n 1)\""
		return 1
	fi
	case $f in
	*.conflist) target=$f ;;
	*) target=${f%.*}.conflist ;;
	esac
	if [ "$target" = "$f" ] && printf '%s\n' "$new" | cmp -s - "$f"; then
		return 0
	fi
	if [ "$target" = "$f" ] && jq -e --argjson p "$PLUGIN" \
		'any(.plugins[]; type == "object" and .type == $p.type)' "$f" >/dev/null; then
		# Chained already, only formatted otherwise: leave the bytes alone.
		return 0
	fi
	printf '%s\n' "$new" | replace "$target"
	if [ "$target" != "$f" ]; then
		rm -f "$f"
	fi
	log info cni_chained "file=$target" "from=$f"
	return 0
}

install_binary() {
	if [ ! -f "$SRC_BIN" ]; then
		log info cni_binary_skipped "src=$SRC_BIN" "why=absent"
		return 0
	fi
	mkdir -p "$BIN_DIR"
	if cmp -s "$SRC_BIN" "$BIN_DIR/ztagent-cni"; then
		return 0
	fi
	# A running plugin keeps its old inode; new invocations get the new one.
	cp "$SRC_BIN" "$BIN_DIR/.ztagent-cni.$$"
	chmod 0755 "$BIN_DIR/.ztagent-cni.$$"
	mv -f "$BIN_DIR/.ztagent-cni.$$" "$BIN_DIR/ztagent-cni"
	log info cni_binary_installed "dst=$BIN_DIR/ztagent-cni"
}

cmd_install() {
	install_binary
	start=$(date +%s)
	waited=0
	until insert; do
		if [ "$waited" -eq 0 ]; then
			log info cni_waiting "dir=$NET_DIR" \
				"why=\"no usable primary CNI configuration yet\""
			waited=1
		fi
		if [ "$TIMEOUT" -gt 0 ] && [ $(($(date +%s) - start)) -ge "$TIMEOUT" ]; then
			log error cni_install_failed "dir=$NET_DIR" \
				"why=\"no usable CNI configuration after ${TIMEOUT}s; is the primary CNI installed?\""
			return 1
		fi
		sleep 1
	done
}

cmd_watch() {
	trap 'exit 0' TERM INT
	while :; do
		insert || true
		sleep "$INTERVAL" &
		wait $! || true
	done
}

cmd_uninstall() {
	f=$(primary)
	[ -n "$f" ] || return 0
	new=$(jq --argjson p "$PLUGIN" "$UNCHAIN" "$f") || return 1
	if ! printf '%s\n' "$new" | cmp -s - "$f"; then
		printf '%s\n' "$new" | replace "$f"
		log info cni_unchained "file=$f"
	fi
	rm -f "$BIN_DIR/ztagent-cni"
}

command -v jq >/dev/null || {
	log error cni_install_failed "why=\"jq is missing\""
	exit 1
}
case ${1:-} in
install) cmd_install ;;
watch) cmd_watch ;;
uninstall) cmd_uninstall ;;
*)
	echo "usage: $0 install|watch|uninstall (see the comment at the top)" >&2
	exit 2
	;;
esac
