#!/usr/bin/env bash
# kafka.sh - real Apache Kafka brokers (KRaft mode, 127.0.0.1) for kpax's tests.
#
# The broker jars come from Maven Central (through mvn) into a cache outside the repo;
# every node is one JVM with process.roles=broker,controller. Run with no arguments for usage.
#
# Node settings travel in plain variables set in subshells on purpose; the pid trick quotes $$.
# shellcheck disable=SC2016,SC2030,SC2031
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# Settings (environment)
# ---------------------------------------------------------------------------------------------
CACHE_DIR="${KPAX_CACHE:-$HOME/.cache/kpax}"                # jars: $CACHE_DIR/kafka-VERSION/libs
RUN_ROOT="${KPAX_RUN_DIR:-${TMPDIR:-/tmp}/kpax-kafka}"      # nodes: $RUN_ROOT/NAME[/i]
CONTROLLER_OFFSET="${KPAX_CONTROLLER_PORT_OFFSET:-1000}"     # controller port = broker port + this
START_TIMEOUT="${KPAX_START_TIMEOUT:-90}"                    # seconds to wait for a node to answer
STOP_TIMEOUT="${KPAX_STOP_TIMEOUT:-15}"                      # seconds between SIGTERM and SIGKILL
JVM_FLAGS="${KPAX_KAFKA_JVM_FLAGS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData}"
SINGLE_HEAP="${KPAX_KAFKA_HEAP:--Xmx512m -Xms256m}"
CLUSTER_HEAP="${KPAX_KAFKA_CLUSTER_HEAP:--Xmx384m -Xms192m}"
CLUSTER_SIZE=3
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# Logging jars the broker needs but does not depend on (the distribution ships them in libs/).
LOG4J1_DEPS="org.slf4j:slf4j-reload4j:1.7.36 ch.qos.reload4j:reload4j:1.2.25"
LOG4J2_VERSION="2.25.5"
JAXB_VERSION="2.3.1"

usage() {
	cat <<EOF
usage: scripts/kafka.sh COMMAND [ARGS]

  fetch VERSION                     broker jars from Maven Central into the cache (idempotent)
  tools VERSION                     Kafka 4.x command-line tools jars too (e.g. the console share
                                    consumer); prints the Java classpath of tools and broker jars
  start NAME VERSION PORT           single KRaft node (broker+controller) on 127.0.0.1:PORT; before
                                    Kafka 3.3 (e.g. 0.8.2.2, 2.8.2) a broker on its own ZooKeeper,
                                    which listens on PORT+\$KPAX_ZK_PORT_OFFSET (default $CONTROLLER_OFFSET)
  secure-start NAME VERSION PORT    single node with PLAINTEXT on PORT (as start) plus SASL_PLAINTEXT
                                    on PORT+1, SSL on PORT+2, SASL_SSL on PORT+3 (see Secure nodes)
  cluster-start NAME VERSION PORT   $CLUSTER_SIZE KRaft nodes on 127.0.0.1:PORT..PORT+$((CLUSTER_SIZE - 1))
  stop NAME[/i]                     SIGTERM, then SIGKILL after ${STOP_TIMEOUT}s (a cluster: all its nodes)
  cluster-stop NAME                 same as stop NAME
  stop-all                          stop every node under $RUN_ROOT
  signal NAME[/i] SIG               send STOP, CONT, KILL, TERM (or any kill(1) name) to node(s)
  restart NAME[/i]                  stop node(s) and start them again on the same data; wait until ready
  wait NAME[/i]                     wait until node(s) answer metadata requests
  status [NAME]                     pid, state, ports and log of each node
  bootstrap NAME                    print the node(s)' 127.0.0.1:PORT list, comma-separated
  log NAME[/i] [LINES]              tail of a node's server log

Cluster nodes are NAME/0, NAME/1, NAME/2 (node.id 1, 2, 3; broker ports PORT, PORT+1, PORT+2).
A single node has node.id 1. Each node's controller listens on broker port + $CONTROLLER_OFFSET.

Secure nodes (secure-start): SASL mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 with the
users $SECURE_USERS_DOC (PLAIN users in the listeners' JAAS config, SCRAM credentials
written at format time); TLS from a test CA generated with openssl in NODE/tls (ca.pem is what
clients trust; the server certificate is for IP 127.0.0.1 and DNS localhost). Brokers talk to
each other over PLAINTEXT. SCRAM-SHA-512 sessions on SASL_PLAINTEXT last ${SECURE_REAUTH_MS} ms
(connections.max.reauth.ms, KIP-368), for tests of clients that must renew them. secure-start prints the addresses and the CA file on stdout as
KEY=VALUE lines (plaintext, sasl_plaintext, ssl, sasl_ssl, ca_file).

Files: jars in \$KPAX_CACHE/kafka-VERSION/libs (KPAX_CACHE=$CACHE_DIR);
nodes in \$KPAX_RUN_DIR/NAME[/i] (KPAX_RUN_DIR=$RUN_ROOT), wiped at start:
server.properties, data/, logs/server.log (WARN and up, plus the start line), logs/stdout.log, pid.

Environment: KPAX_CACHE, KPAX_RUN_DIR, KPAX_MAVEN_REPO (local Maven repo, default ~/.m2/repository),
KPAX_CONTROLLER_PORT_OFFSET, KPAX_START_TIMEOUT, KPAX_STOP_TIMEOUT, KPAX_KAFKA_HEAP,
KPAX_KAFKA_CLUSTER_HEAP, KPAX_KAFKA_JVM_FLAGS, KPAX_KAFKA_EXTRA_PROPS (newline-separated
server.properties lines appended to every node's config; later lines win),
KPAX_KAFKA_EXTRA_PROPS_FILE (a file appended likewise).
EOF
}

die() { echo "kafka.sh: $*" >&2; exit 1; }
say() { echo "kafka.sh: $*" >&2; }
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
elapsed_over() { awk -v a="$1" -v b="$(now)" -v t="$2" 'BEGIN { exit !(b - a > t) }'; }

check_name() {
	[[ $1 =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad name '$1' (letters, digits, '_', '.', '-')"
}
check_version() {
	[[ $1 =~ ^[0-9]+\.[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] || die "bad Kafka version '$1' (want e.g. 3.9.2 or 0.8.2.2)"
}
check_port() {
	if ! [[ $1 =~ ^[0-9]+$ ]] || (($1 < 1024 || $1 + CONTROLLER_OFFSET + CLUSTER_SIZE > 65535)); then
		die "bad port '$1'"
	fi
}
major() { echo "${1%%.*}"; }
# version_num VERSION: 0.10.2.2 -> 10002, 3.9.2 -> 309000 (major*100000 + minor*100 + patch), to compare.
version_num() {
	local a b c
	IFS=. read -r a b c _ <<<"$1"
	echo $((10#$a * 100000 + 10#$b * 100 + 10#${c:-0}))
}
# zk_era VERSION: true for brokers that run on ZooKeeper here (before 3.3, where KRaft became
# production-ready; the 0.x-2.x brokers have no KRaft at all, 2.8-3.2 only an early preview).
zk_era() { (($(version_num "$1") < 300300)); }
# scala_of VERSION: the Scala build of kafka_2.x this script takes: 2.11 (published for 0.8.2 to
# 2.4), 2.13 from 2.4 on (the oldest Scala published for every version we use).
scala_of() {
	if (($(version_num "$1") < 200400)); then echo 2.11; else echo 2.13; fi
}

# Users of secure nodes: name:password, for PLAIN and both SCRAM mechanisms.
SECURE_USERS=(alice:alice-secret bob:bob-secret)
SECURE_USERS_DOC="alice (password alice-secret) and bob (bob-secret)"
SECURE_PORTS=3 # listeners above the PLAINTEXT port: SASL_PLAINTEXT, SSL, SASL_SSL
SECURE_REAUTH_MS=2000

# ZooKeeper-era brokers (before 3.3): the functions live in a sibling file.
# shellcheck source=scripts/kafka-zk.sh
source "$(dirname "${BASH_SOURCE[0]}")/kafka-zk.sh"

# ---------------------------------------------------------------------------------------------
# fetch
# ---------------------------------------------------------------------------------------------
libs_dir() { echo "$CACHE_DIR/kafka-$1/libs"; }

dep_xml() { # group:artifact:version
	local g a v
	IFS=: read -r g a v <<<"$1"
	printf '    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n' "$g" "$a" "$v"
}

write_pom() { # VERSION FILE
	local version=$1 deps d
	deps=("org.apache.kafka:kafka_$(scala_of "$version"):$version")
	if zk_era "$version"; then
		# Java 11 dropped javax.xml.bind, which ZooKeeper-era brokers use (base64, ZooKeeper's
		# 3.4 client); their own pom brings ZooKeeper, and log4j 1 up to 0.11 (later ones need it).
		deps+=("javax.xml.bind:jaxb-api:$JAXB_VERSION")
		if (($(major "$version") >= 1)); then
			read -ra d <<<"$LOG4J1_DEPS"
			deps+=("${d[@]}")
		fi
	elif (($(major "$version") >= 4)); then
		# Kafka 4 logs through log4j2; pin api/core/binding to one version.
		deps+=("org.apache.logging.log4j:log4j-api:$LOG4J2_VERSION"
			"org.apache.logging.log4j:log4j-core:$LOG4J2_VERSION"
			"org.apache.logging.log4j:log4j-slf4j-impl:$LOG4J2_VERSION")
	else
		read -ra d <<<"$LOG4J1_DEPS"
		deps+=("${d[@]}")
	fi
	{
		cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by kpax scripts/kafka.sh: the jars an Apache Kafka $version broker runs with. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>me.h12.kpax</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>$version</version>
  <packaging>pom</packaging>
  <dependencies>
EOF
		for d in "${deps[@]}"; do dep_xml "$d"; done
		cat <<EOF
  </dependencies>
</project>
EOF
	} >"$2"
}

cmd_fetch() {
	(($# == 1)) || die "usage: fetch VERSION"
	local version=$1 base libs t0 mvn_args
	check_version "$version"
	base="$CACHE_DIR/kafka-$version"
	libs="$base/libs"
	[[ -f $libs/.complete ]] && return 0
	command -v mvn >/dev/null || die "mvn not found: run scripts/deps.sh"
	mkdir -p "$base"
	exec 8>"$base/.lock"
	flock 8 # another fetch of the same version may be running
	if [[ ! -f $libs/.complete ]]; then
		t0=$(now)
		say "fetching Kafka $version jars with Maven into $libs"
		write_pom "$version" "$base/pom.xml"
		rm -rf "$libs.tmp"
		mvn_args=(-B -q -ntp -Dstyle.color=never -f "$base/pom.xml")
		[[ -n ${KPAX_MAVEN_REPO:-} ]] && mvn_args+=("-Dmaven.repo.local=$KPAX_MAVEN_REPO")
		# Maven 3.8's local repository is not safe for concurrent writers (a parallel fetch of
		# two versions failed on a half-written .pom.part): one mvn at a time per cache.
		if ! flock "$CACHE_DIR/.mvn.lock" mvn "${mvn_args[@]}" "$DEPENDENCY_PLUGIN:copy-dependencies" \
			-DincludeScope=runtime -DoutputDirectory="$libs.tmp" >"$base/mvn.log" 2>&1; then
			tail -n 30 "$base/mvn.log" >&2
			die "mvn failed to fetch Kafka $version (log: $base/mvn.log)"
		fi
		[[ -f $libs.tmp/kafka_$(scala_of "$version")-$version.jar ]] || die "no kafka_$(scala_of "$version")-$version.jar after mvn (log: $base/mvn.log)"
		rm -rf "$libs"
		touch "$libs.tmp/.complete"
		mv "$libs.tmp" "$libs"
		say "fetched Kafka $version: $(find "$libs" -name '*.jar' | wc -l) jars, $(du -sh "$libs" | cut -f1), in $(since "$t0")s"
	fi
	exec 8>&-
}

# cmd_tools VERSION: Kafka's command-line tools (kafka-tools, e.g. the console share consumer)
# next to the broker jars, in $CACHE_DIR/kafka-tools-VERSION/libs; prints the classpath of both.
cmd_tools() {
	(($# == 1)) || die "usage: tools VERSION"
	local version=$1 base libs mvn_args
	check_version "$version"
	(($(major "$version") >= 4)) || die "tools: Kafka 4.0 or later"
	cmd_fetch "$version"
	base="$CACHE_DIR/kafka-tools-$version"
	libs="$base/libs"
	mkdir -p "$base"
	exec 8>"$base/.lock"
	flock 8
	if [[ ! -f $libs/.complete ]]; then
		say "fetching Kafka $version tools with Maven into $libs"
		{
			echo '<?xml version="1.0" encoding="UTF-8"?>'
			echo "<!-- Generated by kpax scripts/kafka.sh: Apache Kafka $version's command-line tools. -->"
			echo '<project xmlns="http://maven.apache.org/POM/4.0.0">'
			echo '  <modelVersion>4.0.0</modelVersion>'
			echo '  <groupId>me.h12.kpax</groupId>'
			echo '  <artifactId>kafka-tools-libs</artifactId>'
			echo "  <version>$version</version>"
			echo '  <packaging>pom</packaging>'
			echo '  <dependencies>'
			dep_xml "org.apache.kafka:kafka-tools:$version"
			echo '  </dependencies>'
			echo '</project>'
		} >"$base/pom.xml"
		rm -rf "$libs.tmp"
		mvn_args=(-B -q -ntp -Dstyle.color=never -f "$base/pom.xml")
		[[ -n ${KPAX_MAVEN_REPO:-} ]] && mvn_args+=("-Dmaven.repo.local=$KPAX_MAVEN_REPO")
		if ! flock "$CACHE_DIR/.mvn.lock" mvn "${mvn_args[@]}" "$DEPENDENCY_PLUGIN:copy-dependencies" \
			-DincludeScope=runtime -DoutputDirectory="$libs.tmp" >"$base/mvn.log" 2>&1; then
			tail -n 30 "$base/mvn.log" >&2
			die "mvn failed to fetch Kafka $version tools (log: $base/mvn.log)"
		fi
		rm -rf "$libs"
		touch "$libs.tmp/.complete"
		mv "$libs.tmp" "$libs"
	fi
	exec 8>&-
	echo "$libs/*:$(libs_dir "$version")/*"
}

# ---------------------------------------------------------------------------------------------
# Node files
#
# A node lives in a directory D ($RUN_ROOT/NAME for a single node, $RUN_ROOT/NAME/i in a
# cluster) holding node.env (what start/restart need), server.properties, data/, logs/, pid.
# ---------------------------------------------------------------------------------------------

# write_node_env D: from the variables version port cport node_id voters heap label
write_node_env() {
	cat >"$1/node.env" <<EOF
version=$version
port=$port
cport=$cport
node_id=$node_id
voters=$voters
heap="$heap"
label=$label
cluster_size=$cluster_size
secure=${secure:-0}
zk=${zk:-0}
zkport=${zkport:-}
EOF
}

load_node_env() { # D
	[[ -f $1/node.env ]] || die "no node at $1"
	# shellcheck disable=SC1091
	source "$1/node.env"
}

# write_server_properties D: writes D/server.properties for the node described by the
# variables of node.env. The place to extend for TLS/SASL listeners: add lines here, or pass
# them in KPAX_KAFKA_EXTRA_PROPS / KPAX_KAFKA_EXTRA_PROPS_FILE (appended last, so they win).
write_server_properties() {
	local dir=$1 rf=1 min_isr=1
	if ((cluster_size > 1)); then
		rf=$cluster_size
		min_isr=2
	fi
	{
		cat <<EOF
# Generated by kpax scripts/kafka.sh for $label (Kafka $version).
process.roles=broker,controller
node.id=$node_id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
# A node that was SIGKILLed and restarted cannot register again until its old session expires
# (default 9 s), and a killed cluster node is fenced only then. Shorter keeps fault tests quick;
# not much shorter: on a loaded 2-core machine the controller can stall for seconds.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
EOF
		# Kafka 4 enables the consumer group protocol (KIP-848) by default; 3.9 keeps its defaults.
		# Share groups (KIP-932, on by default from 4.2) keep their state in __share_group_state,
		# created with replication factor 3 unless told: a single node could never create it.
		if (($(major "$version") >= 4)); then
			echo "share.coordinator.state.topic.replication.factor=$rf"
			echo "share.coordinator.state.topic.min.isr=$min_isr"
		fi
		if ((${secure:-0})); then secure_properties "$dir"; fi
		if [[ -n ${KPAX_KAFKA_EXTRA_PROPS:-} ]]; then
			echo "# KPAX_KAFKA_EXTRA_PROPS"
			printf '%s\n' "$KPAX_KAFKA_EXTRA_PROPS"
		fi
		if [[ -n ${KPAX_KAFKA_EXTRA_PROPS_FILE:-} ]]; then
			echo "# KPAX_KAFKA_EXTRA_PROPS_FILE=$KPAX_KAFKA_EXTRA_PROPS_FILE"
			cat "$KPAX_KAFKA_EXTRA_PROPS_FILE"
		fi
	} >"$dir/server.properties"
}

# secure_properties D: the listeners of a secure node (these lines override the ones above).
secure_properties() {
	local dir=$1 l m u users="" sasl_port=$((port + 1)) ssl_port=$((port + 2)) sasl_ssl_port=$((port + 3))
	for u in "${SECURE_USERS[@]}"; do users+=" user_${u%%:*}=\"${u#*:}\""; done
	cat <<EOF
# Secure node (kafka.sh secure-start): SASL_PLAINTEXT, SSL and SASL_SSL listeners.
listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sasl_port,SSL://127.0.0.1:$ssl_port,SASL_SSL://127.0.0.1:$sasl_ssl_port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sasl_port,SSL://127.0.0.1:$ssl_port,SASL_SSL://127.0.0.1:$sasl_ssl_port
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.pem
ssl.client.auth=none
EOF
	for l in sasl_plaintext sasl_ssl; do
		echo "listener.name.$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$users;"
		for m in scram-sha-256 scram-sha-512; do
			echo "listener.name.$l.$m.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
		done
	done
	echo "listener.name.sasl_plaintext.scram-sha-512.connections.max.reauth.ms=$SECURE_REAUTH_MS"
}

# make_certs D: a test CA (D/ca.pem) and a server key and certificate signed by it, for
# 127.0.0.1 and localhost, in one PEM keystore (D/server.pem: PKCS#8 key, then the chain).
make_certs() {
	local d=$1
	command -v openssl >/dev/null || die "openssl not found: secure nodes need it for their certificates"
	mkdir -p "$d"
	{
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 30 \
			-subj "/CN=kpax test CA $label" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
			openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=127.0.0.1" &&
			printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" \
				"keyUsage=critical,digitalSignature,keyEncipherment" >"$d/server.ext" &&
			openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
				-out "$d/server.crt" -days 30 -extfile "$d/server.ext"
	} >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; die "$label: making the test certificates failed"; }
	cat "$d/server.key" "$d/server.crt" "$d/ca.pem" >"$d/server.pem"
}

# write_log_config D: WARN and up to D/logs/server.log, plus the "Kafka Server started" line.
write_log_config() {
	local dir=$1
	cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=${KPAX_KAFKA_LOG_LEVEL:-WARN}, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/logs/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.KafkaServer=INFO
EOF
	cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${KPAX_KAFKA_LOG_LEVEL:-WARN}
rootLogger.appenderRef.file.ref = file
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
EOF
}

java_cmd() { # D -> prints nothing; sets the array JAVA
	local dir=$1 h f
	read -ra h <<<"$heap"
	read -ra f <<<"$JVM_FLAGS"
	JAVA=(java "${h[@]}" "${f[@]}" -Djava.awt.headless=true
		"-Dkafka.logs.dir=$dir/logs"
		"-Dlog4j.configuration=file:$dir/log4j.properties"
		"-Dlog4j2.configurationFile=$dir/log4j2.properties"
		-cp "$(libs_dir "$version")/*")
}

random_cluster_id() { # 16 random bytes, URL-safe base64 without padding (Kafka's Uuid form)
	local id
	# Not starting with '-', which kafka-storage would take for an option (as Kafka's Uuid does).
	while id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'); [[ $id == -* ]]; do :; done
	echo "$id"
}

# prepare_node D CLUSTER_ID: wipe D, write config, format storage.
prepare_node() {
	local dir=$1 cluster_id=$2
	rm -rf "$dir"
	mkdir -p "$dir/data" "$dir/logs"
	write_node_env "$dir"
	local format_args=() u m
	if ((${secure:-0})); then
		make_certs "$dir/tls"
		for u in "${SECURE_USERS[@]}"; do
			for m in SCRAM-SHA-256 SCRAM-SHA-512; do
				format_args+=(--add-scram "$m=[name=${u%%:*},password=${u#*:}]")
			done
		done
	fi
	write_server_properties "$dir"
	write_log_config "$dir"
	java_cmd "$dir"
	if ! "${JAVA[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
		--ignore-formatted "${format_args[@]}" >"$dir/logs/format.log" 2>&1; then
		cat "$dir/logs/format.log" >&2
		die "$label: formatting storage failed (log: $dir/logs/format.log)"
	fi
}

# Nodes this invocation launched: stopped again if the command fails (see main).
STARTED_DIRS=()
# The JVMs this invocation launched, by node directory (LAUNCHED: brokers, ZK_LAUNCHED:
# ZooKeepers): our own children, so their liveness needs no command-line check and a death's
# exit status can be read.
declare -A LAUNCHED=() ZK_LAUNCHED=()

# child_alive JOB: JOB (a pid or nothing) is a child of ours that is still running.
child_alive() { [[ -n $1 ]] && alive "$1"; }

# exit_of JOB: how the child JOB ended ("exit status N" or "killed by SIGX"), reaped; or nothing.
exit_of() {
	[[ -n $1 ]] || return 0
	local st=0
	wait "$1" 2>/dev/null || st=$?
	if ((st > 128)); then
		echo "killed by SIG$(kill -l $((st - 128)) 2>/dev/null || echo $((st - 128)))"
	else
		echo "exit status $st"
	fi
}

# launch D: start the node's JVM in its own session, detached from our stdio.
launch() {
	local dir=$1
	load_node_env "$dir"
	STARTED_DIRS+=("$dir")
	if ((zk)); then launch_zk "$dir"; fi
	java_cmd "$dir"
	rm -f "$dir/pid"
	# The inner bash writes its own pid and execs java, so the pid file holds java's pid.
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$dir/pid" \
		"${JAVA[@]}" kafka.Kafka "$dir/server.properties" \
		</dev/null >>"$dir/logs/stdout.log" 2>&1 &
	LAUNCHED[$dir]=$!
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -s $dir/pid ]] && return 0
		sleep 0.1
	done
	die "$label: no pid file after launch"
}

# pid_running PIDFILE MARK: the pid in PIDFILE if that process is alive and its command line
# holds MARK (so a stale file whose pid was reused does not count), else nothing. A process in
# the middle of exec shows an empty command line for a moment (the launcher's bash writes the
# pid file just before it execs java): that is read again, not taken for death. No pipe into
# `grep -q` here: under pipefail its early exit can fail the writer with SIGPIPE.
pid_running() {
	local file=$1 mark=$2 pid cmd i
	[[ -s $file ]] || return 0
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	for ((i = 0; i < 20; i++)); do
		alive "$pid" || return 0
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
		[[ -z $cmd ]] || break
		sleep 0.05
	done
	[[ $cmd == *"$mark"* ]] || return 0
	echo "$pid"
}

# node_pid D: the pid of the node's JVM if it is alive (and really ours), else nothing.
node_pid() { pid_running "$1/pid" "$1/server.properties"; }

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

node_state() { # pid -> running | paused | ...
	local st
	st=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)
	case $st in
	T | t) echo paused ;;
	Z) echo zombie ;;
	"") echo dead ;;
	*) echo running ;;
	esac
}

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# metadata_brokers PORT: number of brokers in a metadata response from 127.0.0.1:PORT.
metadata_brokers() {
	kcat -b "127.0.0.1:$1" -L -m 3 2>/dev/null |
		awk '/^ *[0-9]+ brokers:/ { print $1; exit }' || true
}

# node_ready D: the node answers metadata and lists itself (KRaft lists only unfenced brokers).
node_ready() {
	local dir=$1
	port_open "$port" || return 1
	if command -v kcat >/dev/null; then
		# shellcheck disable=SC2046
		kcat -b "127.0.0.1:$port" $(kcat_probe_flags) -L -m 3 2>/dev/null |
			grep -qE "broker $node_id at 127\.0\.0\.1:$port( |$)"
	else
		grep -q "Kafka Server started" "$dir/logs/server.log" 2>/dev/null
	fi
}

show_log_tail() { # D
	local f
	for f in "$1/logs/server.log" "$1/logs/stdout.log"; do
		[[ -s $f ]] || continue
		echo "---- tail of $f" >&2
		tail -n 40 "$f" >&2
	done
}

# wait_ready D T0: wait until the node answers; fail with the log tail on timeout or death.
wait_ready() {
	local dir=$1 t0=$2 pid
	load_node_env "$dir"
	while :; do
		pid=$(node_pid "$dir")
		if [[ -z $pid ]] && child_alive "${LAUNCHED[$dir]:-}"; then
			pid=${LAUNCHED[$dir]}
		fi
		if [[ -z $pid ]]; then
			show_log_tail "$dir"
			die "$label: the broker process died during start ($(exit_of "${LAUNCHED[$dir]:-}"); logs: $dir/logs)"
		fi
		if node_ready "$dir"; then
			say "$label: Kafka $version ready on 127.0.0.1:$port (controller :$cport, node.id $node_id)" \
				"pid $pid in $(since "$t0")s; log $dir/logs/server.log"
			return 0
		fi
		if elapsed_over "$t0" "$START_TIMEOUT"; then
			show_log_tail "$dir"
			die "$label: not ready after ${START_TIMEOUT}s on 127.0.0.1:$port (pid $pid, logs: $dir/logs)"
		fi
		sleep 0.25
	done
}

# ---------------------------------------------------------------------------------------------
# Resolving NAME[/i] to node directories
# ---------------------------------------------------------------------------------------------
node_dirs() { # NAME[/i] -> prints node directories
	local target=$1 name idx
	name=${target%%/*}
	check_name "$name"
	if [[ $target == */* ]]; then
		idx=${target#*/}
		[[ $idx =~ ^[0-9]+$ ]] || die "bad node index in '$target'"
		[[ -f $RUN_ROOT/$name/$idx/node.env ]] || die "no node $target under $RUN_ROOT"
		echo "$RUN_ROOT/$name/$idx"
	elif [[ -f $RUN_ROOT/$name/node.env ]]; then
		echo "$RUN_ROOT/$name"
	elif [[ -d $RUN_ROOT/$name ]] && compgen -G "$RUN_ROOT/$name/*/node.env" >/dev/null; then
		local f
		for f in "$RUN_ROOT/$name"/*/node.env; do dirname "$f"; done
	else
		die "no node or cluster named '$name' under $RUN_ROOT"
	fi
}

all_node_dirs() {
	[[ -d $RUN_ROOT ]] || return 0
	find "$RUN_ROOT" -mindepth 2 -maxdepth 3 -name node.env -printf '%h\n' | sort
}

# stop_dirs D...: stop the brokers, then the ZooKeepers of ZooKeeper-era nodes.
stop_dirs() {
	stop_broker_dirs "$@"
	stop_zk_dirs "$@"
}

# stop_broker_dirs D...: SIGTERM all (and SIGCONT, in case they are paused), SIGKILL the stragglers.
stop_broker_dirs() {
	local dir pid pids=() labels=() deadline i
	for dir in "$@"; do
		pid=$(node_pid "$dir")
		[[ -n $pid ]] || continue
		kill -TERM "$pid" 2>/dev/null || true
		kill -CONT "$pid" 2>/dev/null || true
		pids+=("$pid")
		labels+=("$(load_node_env "$dir" && echo "$label")")
	done
	((${#pids[@]} > 0)) || return 0
	deadline=$((SECONDS + STOP_TIMEOUT))
	for i in "${!pids[@]}"; do
		while alive "${pids[$i]}" && ((SECONDS < deadline)); do
			sleep 0.2
		done
		if alive "${pids[$i]}"; then
			say "${labels[$i]}: still running after ${STOP_TIMEOUT}s, SIGKILL pid ${pids[$i]}"
			kill -KILL "${pids[$i]}" 2>/dev/null || true
			while alive "${pids[$i]}"; do sleep 0.05; done
		fi
		say "${labels[$i]}: stopped (pid ${pids[$i]})"
	done
}

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------
# stop_leftovers NAME: stop whatever an earlier run left running under NAME.
stop_leftovers() {
	local dirs
	[[ -d $RUN_ROOT/$1 ]] || return 0
	mapfile -t dirs < <(find "$RUN_ROOT/$1" -maxdepth 2 -name node.env -printf '%h\n' | sort)
	((${#dirs[@]} == 0)) || stop_dirs "${dirs[@]}"
}

check_ports_free() {
	local p
	for p in "$@"; do
		! port_open "$p" || die "port 127.0.0.1:$p is already in use"
	done
}

cmd_start() {
	(($# == 3)) || die "usage: start NAME VERSION PORT"
	local name=$1 version=$2 port=$3 dir t0 secure=${secure:-0} extra_ports=()
	check_name "$name"
	check_version "$version"
	check_port "$port"
	dir="$RUN_ROOT/$name"
	if [[ -d $dir ]]; then
		# A leftover of an earlier run under this name: stop whatever is there.
		stop_leftovers "$name"
	fi
	t0=$(now)
	cmd_fetch "$version"
	local cport=$((port + CONTROLLER_OFFSET)) node_id=1 heap=$SINGLE_HEAP label=$name cluster_size=1 i
	local zk=0 zkport=""
	if zk_era "$version"; then
		((!secure)) || die "secure-start runs KRaft nodes only (Kafka 3.3 and later), not $version"
		zk=1 zkport=$((port + ZK_PORT_OFFSET)) cport=$zkport heap=$ZK_ERA_HEAP
	fi
	if ((secure)); then
		for ((i = 1; i <= SECURE_PORTS; i++)); do extra_ports+=($((port + i))); done
	fi
	check_ports_free "$port" "$cport" "${extra_ports[@]}"
	local voters="1@127.0.0.1:$cport"
	rm -rf "$dir"
	if ((zk)); then
		prepare_zk_node "$dir"
	else
		prepare_node "$dir" "$(random_cluster_id)"
	fi
	launch "$dir"
	wait_ready "$dir" "$t0"
}

# secure-start: start with SASL and TLS listeners; what clients need goes to stdout.
cmd_secure_start() {
	(($# == 3)) || die "usage: secure-start NAME VERSION PORT"
	local secure=1 port=$3 dir="$RUN_ROOT/$1" i p
	cmd_start "$@"
	# wait_ready saw the PLAINTEXT listener; the others open in the same start-up.
	for ((i = 1; i <= SECURE_PORTS; i++)); do
		p=$((port + i))
		until port_open "$p"; do
			[[ -n $(node_pid "$dir") ]] || die "$1: the broker died before port $p opened"
			sleep 0.1
		done
	done
	echo "plaintext=127.0.0.1:$port"
	echo "sasl_plaintext=127.0.0.1:$((port + 1))"
	echo "ssl=127.0.0.1:$((port + 2))"
	echo "sasl_ssl=127.0.0.1:$((port + 3))"
	echo "ca_file=$dir/tls/ca.pem"
}

cmd_cluster_start() {
	(($# == 3)) || die "usage: cluster-start NAME VERSION PORT"
	local name=$1 version=$2 base=$3 cdir i t0 cluster_id voters="" dirs=() pids=() n
	check_name "$name"
	check_version "$version"
	check_port "$base"
	! zk_era "$version" || die "cluster-start runs KRaft clusters only (Kafka 3.3 and later), not $version"
	command -v kcat >/dev/null || die "$name: kcat is needed to check the cluster (scripts/deps.sh installs it)"
	cdir="$RUN_ROOT/$name"
	if [[ -d $cdir ]]; then
		stop_leftovers "$name"
	fi
	t0=$(now)
	cmd_fetch "$version"
	for ((i = 0; i < CLUSTER_SIZE; i++)); do
		check_ports_free $((base + i)) $((base + i + CONTROLLER_OFFSET))
		voters+="${voters:+,}$((i + 1))@127.0.0.1:$((base + i + CONTROLLER_OFFSET))"
	done
	rm -rf "$cdir"
	mkdir -p "$cdir"
	cluster_id=$(random_cluster_id)
	# Format the nodes in parallel (one short JVM each).
	for ((i = 0; i < CLUSTER_SIZE; i++)); do
		dirs+=("$cdir/$i")
		(
			port=$((base + i)) cport=$((base + i + CONTROLLER_OFFSET)) node_id=$((i + 1))
			heap=$CLUSTER_HEAP label="$name/$i" cluster_size=$CLUSTER_SIZE
			prepare_node "$cdir/$i" "$cluster_id"
		) &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || die "$name: formatting a node failed"; done
	for i in "${dirs[@]}"; do launch "$i"; done
	for i in "${dirs[@]}"; do wait_ready "$i" "$t0"; done
	# Every node lists itself; now wait until one sees them all.
	while n=$(metadata_brokers "$base") && [[ ${n:-0} -lt $CLUSTER_SIZE ]]; do
		! elapsed_over "$t0" "$START_TIMEOUT" || die "$name: only ${n:-0} of $CLUSTER_SIZE brokers in metadata"
		sleep 0.25
	done
	say "$name: $CLUSTER_SIZE-node Kafka $version cluster ready in $(since "$t0")s; bootstrap $(cmd_bootstrap "$name")"
}

cmd_stop() {
	(($# == 1)) || die "usage: stop NAME[/i]"
	local dirs
	if [[ ! -d $RUN_ROOT/${1%%/*} ]]; then
		say "${1}: nothing to stop"
		return 0
	fi
	mapfile -t dirs < <(node_dirs "$1")
	stop_dirs "${dirs[@]}"
}

cmd_stop_all() {
	local dirs
	mapfile -t dirs < <(all_node_dirs)
	((${#dirs[@]} == 0)) || stop_dirs "${dirs[@]}"
}

cmd_signal() {
	(($# == 2)) || die "usage: signal NAME[/i] STOP|CONT|KILL|TERM"
	local sig=${2#SIG} dirs dir pid
	kill -l "$sig" >/dev/null 2>&1 || die "unknown signal '$2'"
	mapfile -t dirs < <(node_dirs "$1")
	for dir in "${dirs[@]}"; do
		load_node_env "$dir"
		pid=$(node_pid "$dir")
		if [[ -z $pid ]]; then
			say "$label: not running"
			continue
		fi
		kill -s "$sig" "$pid"
		say "$label: sent SIG$sig to pid $pid"
		if [[ $sig == KILL || $sig == 9 ]]; then
			while alive "$pid"; do sleep 0.05; done
		fi
	done
}

cmd_restart() {
	(($# == 1)) || die "usage: restart NAME[/i]"
	local dirs dir t0
	mapfile -t dirs < <(node_dirs "$1")
	stop_dirs "${dirs[@]}"
	t0=$(now)
	for dir in "${dirs[@]}"; do launch "$dir"; done
	for dir in "${dirs[@]}"; do wait_ready "$dir" "$t0"; done
}

cmd_wait() {
	(($# == 1)) || die "usage: wait NAME[/i]"
	local dirs dir t0
	mapfile -t dirs < <(node_dirs "$1")
	t0=$(now)
	for dir in "${dirs[@]}"; do wait_ready "$dir" "$t0"; done
}

cmd_status() {
	local dirs dir pid state
	if (($# == 1)); then
		mapfile -t dirs < <(node_dirs "$1")
	else
		mapfile -t dirs < <(all_node_dirs)
	fi
	((${#dirs[@]} > 0)) || { echo "no nodes under $RUN_ROOT"; return 0; }
	printf '%-12s %-8s %-8s %-7s %-7s %-8s %s\n' NODE VERSION PID STATE PORT CPORT LOG
	for dir in "${dirs[@]}"; do
		(
			load_node_env "$dir"
			pid=$(node_pid "$dir")
			if [[ -n $pid ]]; then state=$(node_state "$pid"); else state=stopped; fi
			printf '%-12s %-8s %-8s %-7s %-7s %-8s %s\n' "$label" "$version" "${pid:--}" "$state" \
				"$port" "$cport" "$dir/logs/server.log"
		)
	done
}

cmd_bootstrap() {
	(($# == 1)) || die "usage: bootstrap NAME"
	local dirs dir out=""
	mapfile -t dirs < <(node_dirs "$1")
	for dir in "${dirs[@]}"; do
		out+="${out:+,}127.0.0.1:$(load_node_env "$dir" && echo "$port")"
	done
	echo "$out"
}

cmd_log() {
	(($# == 1 || $# == 2)) || die "usage: log NAME[/i] [LINES]"
	local dirs dir
	mapfile -t dirs < <(node_dirs "$1")
	for dir in "${dirs[@]}"; do
		echo "==> $dir/logs/server.log"
		tail -n "${2:-40}" "$dir/logs/server.log" 2>/dev/null || true
	done
}

on_exit() {
	local rc=$?
	if ((rc != 0 && ${#STARTED_DIRS[@]} > 0)); then
		say "failed: stopping the node(s) this command started"
		stop_dirs "${STARTED_DIRS[@]}" || true
	fi
	exit "$rc"
}

main() {
	(($# >= 1)) || { usage >&2; exit 2; }
	trap on_exit EXIT
	local cmd=$1
	shift
	case $cmd in
	fetch) cmd_fetch "$@" ;;
	tools) cmd_tools "$@" ;;
	start) cmd_start "$@" ;;
	secure-start) cmd_secure_start "$@" ;;
	cluster-start) cmd_cluster_start "$@" ;;
	stop | cluster-stop) cmd_stop "$@" ;;
	stop-all) cmd_stop_all "$@" ;;
	signal) cmd_signal "$@" ;;
	restart) cmd_restart "$@" ;;
	wait) cmd_wait "$@" ;;
	status) cmd_status "$@" ;;
	bootstrap) cmd_bootstrap "$@" ;;
	log) cmd_log "$@" ;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
