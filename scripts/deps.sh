#!/usr/bin/env bash
# Installs the system tools that kpax's tests need on a fresh Debian machine:
#   kcat   - librdkafka's command-line client, the interop peer and readiness probe
#   java   - runs the Kafka brokers (scripts/kafka.sh)
#   mvn    - fetches the broker jars from Maven Central (scripts/kafka.sh fetch)
#   flock, setsid (util-linux) - used by scripts/kafka.sh
#   openssl - the secure node's test CA (kafka.sh secure-start), encrypted keys in the CLI's tests
#   gcc    - cgo, which go test -race needs; make, cmp - the Makefile
# Idempotent: prints nothing and touches nothing when all tools are present.
# Runs 'apt-get update' at most once, and only when something is missing.
set -euo pipefail

declare -A pkg_for=(
	[kcat]=kcat
	[java]=default-jre-headless
	[mvn]=maven
	[flock]=util-linux
	[setsid]=util-linux
	[openssl]=openssl
	[gcc]=gcc
	[make]=make
	[cmp]=diffutils
)

missing=()
for tool in "${!pkg_for[@]}"; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		missing+=("${pkg_for[$tool]}")
	fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

# de-duplicate package names
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps.sh: missing packages (${missing[*]}) and no apt-get: install them by hand" >&2
	exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
	sudo=(sudo)
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "deps.sh: apt-get failed" >&2
	exit 1
fi
for tool in "${!pkg_for[@]}"; do
	command -v "$tool" >/dev/null 2>&1 || { echo "deps.sh: $tool still missing after install" >&2; exit 1; }
done
echo "deps.sh: done" >&2
