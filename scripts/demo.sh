#!/usr/bin/env bash
# demo.sh - kpax's command-line tool at work against a local Kafka (`make demo`).
#
#   scripts/demo.sh        install what is missing (scripts/deps.sh, Kafka jars), build cmd/kpax,
#                          start a single-node Kafka on 127.0.0.1:$DEMO_PORT (or reuse the one an
#                          earlier run left), then: create a topic, produce lines, consume them
#                          in a consumer group, show the group's lag. The broker keeps running.
#   scripts/demo.sh down   stop that broker (`make demo-down`).
#
# Idempotent: a re-run reuses the broker, the topic and the group, produces new lines and
# consumes them from where the group left off.
#
# Environment: DEMO_PORT (9092), DEMO_VERSION (Kafka version, 4.4.0), DEMO_NAME (node name,
# kpax-demo), DEMO_RUN_DIR (node files and the kpax binary, $TMPDIR/kpax-demo), DEMO_TOPIC,
# DEMO_GROUP, DEMO_LINES (lines per run, 10).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PORT="${DEMO_PORT:-9092}"
VERSION="${DEMO_VERSION:-4.4.0}"
NAME="${DEMO_NAME:-kpax-demo}"
export KPAX_RUN_DIR="${DEMO_RUN_DIR:-${TMPDIR:-/tmp}/kpax-demo}"
TOPIC="${DEMO_TOPIC:-kpax-demo}"
GROUP="${DEMO_GROUP:-kpax-demo-group}"
LINES="${DEMO_LINES:-10}"
KAFKA=scripts/kafka.sh
BIN="$KPAX_RUN_DIR/bin/kpax"
export KPAX_BROKERS="127.0.0.1:$PORT"

bold=""
plain=""
if [[ -t 1 ]]; then
	bold=$'\e[1m'
	plain=$'\e[0m'
fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
die() { echo "demo.sh: $*" >&2; exit 1; }

# node_state prints "STATE PORT VERSION" of the demo node, or nothing.
node_state() {
	"$KAFKA" status "$NAME" 2>/dev/null | awk 'NR == 2 { print $4, $5, $2 }' || true
}

cmd_down() {
	local state
	state=$(node_state)
	if [[ -z $state || $state == stopped* ]]; then
		echo "demo.sh: the demo broker ($NAME under $KPAX_RUN_DIR) is not running"
		return 0
	fi
	"$KAFKA" stop "$NAME"
}

# kpax prints the command line, then runs it.
kpax() {
	local a line=""
	for a in "$@"; do
		if [[ $a =~ ^[A-Za-z0-9_.:/@=,+-]+$ ]]; then line+=" $a"; else line+=" ${a@Q}"; fi
	done
	printf '%s$ kpax%s%s\n' "$bold" "$line" "$plain"
	"$BIN" "$@"
}

cmd_run() {
	[[ $PORT =~ ^[0-9]+$ ]] || die "bad DEMO_PORT '$PORT'"
	command -v go >/dev/null || die "go not found: install Go (https://go.dev/dl/) first"

	step "Installing what is missing (scripts/deps.sh: kcat, Java, Maven) and the Kafka $VERSION jars"
	scripts/deps.sh
	"$KAFKA" fetch "$VERSION"

	step "Building cmd/kpax into $BIN"
	mkdir -p "$(dirname "$BIN")"
	go build -o "$BIN" ./cmd/kpax

	local state
	state=$(node_state)
	if [[ $state == "running $PORT $VERSION" ]] && "$KAFKA" wait "$NAME" >/dev/null 2>&1; then
		step "Kafka $VERSION is already running on 127.0.0.1:$PORT (node $NAME)"
	else
		step "Starting Kafka $VERSION (KRaft, one node) on 127.0.0.1:$PORT"
		"$KAFKA" start "$NAME" "$VERSION" "$PORT"
	fi

	step "The cluster"
	kpax metadata

	step "A topic with 3 partitions (kept when it exists)"
	kpax topic create -if-not-exists -partitions 3 "$TOPIC"

	step "Producing $LINES lines, KEY:VALUE, from stdin"
	local run i input=""
	run=$(date +%H:%M:%S)
	for ((i = 1; i <= LINES; i++)); do
		input+="user-$((i % 4)):event $i of the run at $run"$'\n'
	done
	printf '%s' "$input" | sed 's/^/  | /'
	printf '%s' "$input" | kpax produce -K : "$TOPIC"
	kpax offsets "$TOPIC"

	step "The lag of group $GROUP before it reads them"
	kpax group lag "$GROUP"

	step "Consuming them in group $GROUP (from its committed offsets; earliest the first time)"
	kpax consume -group "$GROUP" -o earliest -c "$LINES" -timeout 60s -f 'partition %p offset %o: %k = %v\n' "$TOPIC"

	step "The lag of group $GROUP after"
	kpax group lag "$GROUP"

	step "Done"
	cat <<EOF
Kafka is still running on 127.0.0.1:$PORT (node $NAME, files in $KPAX_RUN_DIR).
Try it yourself:
  export KPAX_BROKERS=127.0.0.1:$PORT
  $BIN consume -o earliest -e -json $TOPIC
  $BIN -h
Stop the broker with: make demo-down
EOF
}

case "${1:-run}" in
run) cmd_run ;;
down) cmd_down ;;
-h | --help | help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
*)
	echo "usage: scripts/demo.sh [run|down]" >&2
	exit 2
	;;
esac
