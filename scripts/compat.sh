#!/usr/bin/env bash
# compat.sh - the compatibility suite: one broker of each Kafka era, the Go checks (TestCompat in
# compat_test.go) against all of them, the README's table from the results.
#
#   scripts/compat.sh run      fetch, start every version in parallel, go test -run TestCompat,
#                              stop them (whatever happens), write the table (COMPAT_TABLE)
#   scripts/compat.sh up       fetch and start them; print KPAX_TEST_COMPAT=...
#   scripts/compat.sh down     stop them
#   scripts/compat.sh readme   put COMPAT_TABLE into README.md between the compat-table markers
#
# After a run of every version, `run` fails if README.md's table differs from the results (run
# `scripts/compat.sh readme` and commit).
#
# Environment: COMPAT_VERSIONS (space-separated), COMPAT_PORT_BASE (version i listens on
# COMPAT_PORT_BASE + 10*i; its ZooKeeper or KRaft controller on that + KPAX_ZK_PORT_OFFSET /
# KPAX_CONTROLLER_PORT_OFFSET, both 1000 by default), COMPAT_RUNNING (VERSION=HOST:PORT,...:
# brokers of those versions already up, e.g. make test's, used instead of starting them),
# KPAX_RUN_DIR (default $TMPDIR/kpax-compat), COMPAT_TABLE (default $TMPDIR/kpax-compat-table.md),
# COMPAT_GOTESTFLAGS, GO.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
KAFKA="$here/kafka.sh"
ALL_VERSIONS="0.8.2.2 0.9.0.1 0.10.2.2 0.11.0.3 1.1.1 2.4.1 2.8.2 3.9.2 4.4.0"
VERSIONS=(${COMPAT_VERSIONS:-$ALL_VERSIONS})
RUNNING=",${COMPAT_RUNNING:-},"
BASE=${COMPAT_PORT_BASE:-27100}
export KPAX_RUN_DIR="${KPAX_RUN_DIR:-${TMPDIR:-/tmp}/kpax-compat}"
TABLE=${COMPAT_TABLE:-${TMPDIR:-/tmp}/kpax-compat-table.md}
FAILURES=$KPAX_RUN_DIR/start-logs/failures.txt
GO=${GO:-go}

say() { echo "compat.sh: $*" >&2; }
name_of() { echo "compat-${1//./_}"; }

# running VERSION: the address of an already running broker of VERSION (COMPAT_RUNNING), or nothing.
running() {
	local r=${RUNNING#*,"$1"=}
	[[ $r != "$RUNNING" ]] && echo "${r%%,*}"
}

env_list() {
	local i out="" addr
	for i in "${!VERSIONS[@]}"; do
		addr=$(running "${VERSIONS[$i]}") || addr=127.0.0.1:$((BASE + 10 * i))
		out+="${out:+,}${VERSIONS[$i]}=$addr"
	done
	echo "$out"
}

# start_one I LOG: start version I (kafka.sh start), its messages to stderr and into LOG.
start_one() {
	local v=${VERSIONS[$1]}
	"$KAFKA" start "$(name_of "$v")" "$v" $((BASE + 10 * $1)) 2> >(tee "$2" >&2)
}

# start_failed I LOG TRY: say why version I did not start, last, where a CI excerpt shows it.
# FAILURES (in cmd_up's directory) keeps them for cmd_run to print again after the stops.
start_failed() {
	{
		echo "compat.sh: Kafka ${VERSIONS[$1]} failed to start ($3); the last lines of its start:"
		tail -n 40 "$2" | sed 's/^/    /'
	} | tee -a "$FAILURES" >&2
}

# up: fetch the versions (kafka.sh runs one mvn at a time), then start all in parallel. A version
# whose start fails is started once more, alone (its first failure is printed); a second failure
# fails the suite.
cmd_up() {
	local i v pids=() rc=0 t0=$SECONDS n=0 idx=() failed=() logs="$KPAX_RUN_DIR/start-logs"
	for v in "${VERSIONS[@]}"; do
		running "$v" >/dev/null || { "$KAFKA" fetch "$v" & pids+=($!); }
	done
	for i in "${pids[@]}"; do wait "$i" || rc=1; done
	((rc == 0)) || { say "fetching failed"; return 1; }
	say "fetched ${#pids[@]} versions in $((SECONDS - t0))s"
	mkdir -p "$logs"
	rm -f "$FAILURES"
	t0=$SECONDS pids=()
	for i in "${!VERSIONS[@]}"; do
		running "${VERSIONS[$i]}" >/dev/null && continue
		start_one "$i" "$logs/$i.log" & pids+=($!) idx+=("$i")
		n=$((n + 1))
	done
	for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${idx[$i]}"); done
	for i in "${failed[@]}"; do
		start_failed "$i" "$logs/$i.log" "first try"
		say "starting Kafka ${VERSIONS[$i]} again"
		if ! start_one "$i" "$logs/$i.retry.log"; then
			start_failed "$i" "$logs/$i.retry.log" "second try"
			rc=1
		fi
	done
	((rc == 0)) || { say "starting failed"; return 1; }
	say "started $n brokers in parallel in $((SECONDS - t0))s${failed[*]:+ (${#failed[@]} on a second try)}"
	echo "KPAX_TEST_COMPAT=$(env_list)"
}

cmd_down() {
	local v
	for v in "${VERSIONS[@]}"; do
		running "$v" >/dev/null || { "$KAFKA" stop "$(name_of "$v")" || true; } &
	done
	wait
}

cmd_readme() {
	[[ -s $TABLE ]] || { say "no table at $TABLE (run scripts/compat.sh run)"; return 1; }
	local readme="$root/README.md" tmp
	grep -q '<!-- compat-table:begin -->' "$readme" || { say "README.md has no compat-table markers"; return 1; }
	tmp=$(mktemp)
	awk -v table="$TABLE" '
		/<!-- compat-table:begin -->/ { print; while ((getline l < table) > 0) print l; skip = 1; next }
		/<!-- compat-table:end -->/ { skip = 0 }
		!skip { print }' "$readme" >"$tmp"
	mv "$tmp" "$readme"
	say "README.md: compatibility table from $TABLE"
}

# readme_current: whether README.md holds COMPAT_TABLE between its markers.
readme_current() {
	awk '/<!-- compat-table:end -->/ { exit } on { print } /<!-- compat-table:begin -->/ { on = 1 }' \
		"$root/README.md" | cmp -s - "$TABLE"
}

cmd_run() {
	local rc=0 t0=$SECONDS t1
	trap cmd_down EXIT
	cmd_up >/dev/null || rc=$?
	t1=$SECONDS
	if ((rc == 0)); then
		rm -f "$TABLE"
		(cd "$root" && KPAX_TEST_COMPAT=$(env_list) KPAX_COMPAT_TABLE=$TABLE \
			$GO test ${COMPAT_GOTESTFLAGS:--count=1 -timeout 10m} -run '^TestCompat$' .) || rc=$?
		say "suite: $((SECONDS - t1))s; table: $TABLE"
		[[ -s $TABLE ]] && cat "$TABLE"
		if ((rc == 0)) && [[ ${VERSIONS[*]} == "$ALL_VERSIONS" ]] && ! readme_current; then
			say "README.md's compatibility table differs from these results: run scripts/compat.sh readme"
			rc=1
		fi
	fi
	cmd_down
	trap - EXIT
	# A failed start printed why before the stops' lines; again here, where an excerpt ends.
	if ((rc != 0)) && [[ -s $FAILURES ]]; then cat "$FAILURES" >&2; fi
	say "total $((SECONDS - t0))s, exit $rc"
	return "$rc"
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
run) cmd_run ;;
readme) cmd_readme ;;
*)
	sed -n '2,19p' "$0" >&2
	exit 2
	;;
esac
