# kpax developer targets. `make help` lists them; DEVELOPERS.md says why they exist.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO            ?= go
KAFKA         := scripts/kafka.sh

# The newest Kafka release: the protocol guide protocol_gen.go is generated from (merged with
# KAFKA_BASE's, the last guide that lists every version back to v0) and the 4.x test broker.
# Bumping it is this one line and `make generate`.
KAFKA_NEWEST  ?= 4.4.0
KAFKA_BASE    ?= 3.9.2

# Brokers for the integration tests (single KRaft nodes on 127.0.0.1).
K39_VERSION   ?= $(KAFKA_BASE)
K39_NAME      ?= k39
K39_PORT      ?= 19092
K4_VERSION    ?= $(KAFKA_NEWEST)
K4_NAME       ?= k4
K4_PORT       ?= 29092
# 3-node cluster for failover work: broker ports CLUSTER_PORT..CLUSTER_PORT+2.
CLUSTER_VERSION ?= $(K4_VERSION)
CLUSTER_NAME  ?= kc
CLUSTER_PORT  ?= 21092

# Nodes the tests start themselves (kafka_test.go): a 3-node cluster on TEST_PORT_BASE..+2 and
# private nodes on TEST_PORT_BASE+10, +20, ...; kept under their own run directory.
TEST_PORT_BASE ?= 23092
TEST_RUN_DIR  ?= $(or $(TMPDIR),/tmp)/kpax-kafka-tests-$(TEST_PORT_BASE)

# The protocol guides gen/ reads, oldest first: scripts/spec.sh prints them from the kafka-clients
# jars into $(KPAX_CACHE)/spec (default ~/.cache/kpax/spec), outside the tree. SPEC=path overrides
# them with one guide (e.g. a hand-kept 3.9 page).
SPEC_VERSIONS ?= $(KAFKA_BASE) $(KAFKA_NEWEST)
SPEC          ?=
SPECS          = $(if $(SPEC),$(SPEC),$(foreach v,$(SPEC_VERSIONS),$(shell scripts/spec.sh $(v))))
GEN_ARGS       = $(foreach s,$(SPECS),-spec $(s))
TEST_TIMEOUT  ?= 25m
GOTESTFLAGS   ?= -race -count=1 -timeout $(TEST_TIMEOUT) -v
GOTEST_LOG    ?= $(or $(TMPDIR),/tmp)/kpax-gotest.log
FUZZTIME      ?= 30s

# What the tests read to find the brokers and the script that controls them.
TEST_ENV := KPAX_TEST_KAFKA39=127.0.0.1:$(K39_PORT) \
	KPAX_TEST_KAFKA4=127.0.0.1:$(K4_PORT) \
	KPAX_KAFKA_SH=$(CURDIR)/$(KAFKA) \
	KPAX_TEST_PORT_BASE=$(TEST_PORT_BASE) \
	KPAX_RUN_DIR=$(TEST_RUN_DIR) \
	KPAX_TEST_NODE_VERSION=$(K4_VERSION) \
	KPAX_SPECS="$(SPECS)"

.PHONY: help demo demo-down deps fetch spec generate kafka-up kafka-down kafka-status kafka-stop-all cluster-up cluster-down test-nodes-down \
	vet gencheck gotest test test-compat fuzz bench bench-unit chaos

help:
	@echo 'make demo         install what is missing, start Kafka $(DEMO_VERSION) on 127.0.0.1:$(DEMO_PORT), a round trip with cmd/kpax'
	@echo 'make demo-down    stop the demo broker'
	@echo 'make deps         install kcat & co (scripts/deps.sh), fetch Kafka $(K39_VERSION) and $(K4_VERSION) jars'
	@echo 'make kafka-up     start $(K39_NAME) (Kafka $(K39_VERSION), 127.0.0.1:$(K39_PORT)) and $(K4_NAME) (Kafka $(K4_VERSION), 127.0.0.1:$(K4_PORT))'
	@echo 'make kafka-down   stop them'
	@echo 'make kafka-status pids, ports, logs of all local brokers'
	@echo 'make cluster-up   3-node Kafka $(CLUSTER_VERSION) cluster $(CLUSTER_NAME) on 127.0.0.1:$(CLUSTER_PORT)-$(shell echo $$(($(CLUSTER_PORT)+2)))'
	@echo 'make cluster-down stop it'
	@echo 'make kafka-stop-all  stop every node under $$KPAX_RUN_DIR (also ones others started)'
	@echo 'make vet          go vet ./...'
	@echo 'make spec         the protocol guides of Kafka $(SPEC_VERSIONS) from the kafka-clients jars (scripts/spec.sh)'
	@echo 'make generate     protocol_gen.go from them (go generate runs this)'
	@echo 'make gencheck     protocol_gen.go matches what gen writes from them'
	@echo 'make gotest       go test $(GOTESTFLAGS) ./... against running brokers'
	@echo 'make test         deps, kafka-up, vet, gencheck, gotest, test-compat, kafka-down (always), summary'
	@echo 'make test-compat  the compatibility suite: Kafka 0.8.2 to 4.x, one broker each (scripts/compat.sh)'
	@echo 'make fuzz         each Fuzz target for FUZZTIME=$(FUZZTIME)'
	@echo 'make bench-unit   in-package benchmarks (go test -bench . -benchmem)'
	@echo 'make bench        kpax vs franz-go, sarama, kafka-go (bench/): sink broker + Kafka $(K4_VERSION) -> bench/results/'
	@echo '                  BENCH_N=records per run, BENCH_REPS=repetitions, BENCH_KAFKA=use this broker instead of starting one'
	@echo 'make chaos        kpax vs franz-go under the same seeded chaos (bench/cmd/kchaos) on a 3-node Kafka $(K4_VERSION) cluster'
	@echo '                  on 127.0.0.1:$(CHAOS_PORT)-$(shell echo $$(($(CHAOS_PORT)+2))), started and stopped here -> bench/results/chaos.md; CHAOS_FLAGS=kchaos flags'

# The README's main command (scripts/demo.sh): it leaves its broker running; demo-down stops it.
DEMO_PORT     ?= 9092
DEMO_VERSION  ?= $(K4_VERSION)
DEMO_ENV      := DEMO_PORT=$(DEMO_PORT) DEMO_VERSION=$(DEMO_VERSION)

demo:
	@$(DEMO_ENV) scripts/demo.sh

demo-down:
	@$(DEMO_ENV) scripts/demo.sh down

deps:
	@scripts/deps.sh
	@$(KAFKA) fetch $(K39_VERSION)
	@$(KAFKA) fetch $(K4_VERSION)
	@for v in $(SPEC_VERSIONS); do scripts/spec.sh $$v >/dev/null; done

spec:
	@for v in $(SPEC_VERSIONS); do scripts/spec.sh $$v; done

generate:
	@[ -n "$(strip $(SPECS))" ] || { echo "generate: no protocol guide (scripts/spec.sh failed?)" >&2; exit 1; }
	$(GO) run ./gen $(GEN_ARGS) -o protocol_gen.go

fetch:
	@$(KAFKA) fetch $(K39_VERSION)
	@$(KAFKA) fetch $(K4_VERSION)
	@$(KAFKA) tools $(K4_VERSION) >/dev/null # the console share consumer, for share group interop

# Both brokers start in parallel; if either fails, both are stopped.
kafka-up: fetch
	@$(KAFKA) start $(K39_NAME) $(K39_VERSION) $(K39_PORT) & p1=$$!; \
	$(KAFKA) start $(K4_NAME) $(K4_VERSION) $(K4_PORT) & p2=$$!; \
	rc=0; wait $$p1 || rc=1; wait $$p2 || rc=1; \
	if [ $$rc -ne 0 ]; then $(KAFKA) stop $(K39_NAME); $(KAFKA) stop $(K4_NAME); fi; \
	exit $$rc

kafka-down:
	@$(KAFKA) stop $(K39_NAME); $(KAFKA) stop $(K4_NAME)

kafka-status:
	@$(KAFKA) status

# Every node under KPAX_RUN_DIR, including other people's on a shared machine.
kafka-stop-all:
	@$(KAFKA) stop-all

cluster-up:
	@$(KAFKA) fetch $(CLUSTER_VERSION)
	@$(KAFKA) cluster-start $(CLUSTER_NAME) $(CLUSTER_VERSION) $(CLUSTER_PORT)

cluster-down:
	@$(KAFKA) cluster-stop $(CLUSTER_NAME)

# Whatever nodes the tests started and left (a test binary that died before its TestMain cleanup).
test-nodes-down:
	@KPAX_RUN_DIR=$(TEST_RUN_DIR) $(KAFKA) stop-all

vet:
	$(GO) vet ./...

gencheck:
	@[ -n "$(strip $(SPECS))" ] || { echo "gencheck: no protocol guide (scripts/spec.sh failed?)" >&2; exit 1; }; \
	tmp=$$(mktemp "$${TMPDIR:-/tmp}/kpax-protocol_gen.XXXXXX"); trap 'rm -f "$$tmp"' EXIT; \
	for s in $(SPECS); do [ -f "$$s" ] || { echo "gencheck: spec $$s not found" >&2; exit 1; }; done; \
	$(GO) run ./gen $(GEN_ARGS) -o "$$tmp"; \
	if cmp -s "$$tmp" protocol_gen.go; then echo "gencheck: protocol_gen.go is up to date ($(if $(SPEC),$(SPEC),Kafka $(SPEC_VERSIONS)))"; \
	else echo "gencheck: protocol_gen.go is stale: run make generate" >&2; \
		diff -u protocol_gen.go "$$tmp" | head -n 40 >&2 || true; exit 1; fi

# The compatibility suite (scripts/compat.sh): one broker of each Kafka era from 0.8.2 to 4.x, started
# in parallel on COMPAT_PORT_BASE + 10*i (ZooKeeper or controller +1000), TestCompat against them,
# stopped whatever happens; it fails if README.md's table differs from the results. make test passes
# its own 3.9.2 and 4.4.0 brokers (COMPAT_RUNNING) rather than starting two more.
COMPAT_PORT_BASE ?= 27100
COMPAT_RUNNING   ?=
COMPAT_RUN_DIR   ?= $(or $(TMPDIR),/tmp)/kpax-compat-$(COMPAT_PORT_BASE)
test-compat:
	@COMPAT_PORT_BASE=$(COMPAT_PORT_BASE) COMPAT_RUNNING="$(COMPAT_RUNNING)" KPAX_RUN_DIR=$(COMPAT_RUN_DIR) \
		COMPAT_TABLE=$(COMPAT_RUN_DIR)-table.md GO=$(GO) scripts/compat.sh run

# go test against brokers that are already up (make kafka-up); output also in GOTEST_LOG.
GOTEST_CMD = echo "go test $(GOTESTFLAGS) ./...  (log: $(GOTEST_LOG))"; \
	$(TEST_ENV) $(GO) test $(GOTESTFLAGS) ./... 2>&1 | tee "$(GOTEST_LOG)"

# Tests the race detector would distort (it multiplies RSS) run again without it, into the
# same log; under -race they skip.
NORACE_TESTS  ?= ^TestMemoryBudgetRSS$$
GOTEST_NORACE_CMD = echo "go test -count=1 -v -run '$(NORACE_TESTS)' .  (without -race)"; \
	$(TEST_ENV) $(GO) test -count=1 -timeout 10m -v -run '$(NORACE_TESTS)' . 2>&1 | tee -a "$(GOTEST_LOG)"

gotest:
	@$(GOTEST_CMD)
	@$(GOTEST_NORACE_CMD)

# The whole check, as CI runs it. Its brokers (and a cluster the tests may have started as
# CLUSTER_NAME) are stopped however it ends; the exit code is the
# first failure's. Integration tests find the brokers in KPAX_TEST_KAFKA39 / KPAX_TEST_KAFKA4.
test: deps
	@t0=$$SECONDS; up=FAIL; vet=-; gen=-; gt=-; compat=-; rc=0; \
	trap '$(MAKE) --no-print-directory kafka-down test-nodes-down || true' EXIT; \
	ts=$$SECONDS; if $(MAKE) --no-print-directory kafka-up; then up="ok ($$((SECONDS - ts))s)"; else rc=1; fi; \
	if [ $$rc -eq 0 ]; then \
		if $(MAKE) --no-print-directory vet; then vet=ok; else vet=FAIL; rc=1; fi; \
		if $(MAKE) --no-print-directory gencheck; then gen=ok; else gen=FAIL; [ $$rc -ne 0 ] || rc=1; fi; \
		ts=$$SECONDS; r=0; ( $(GOTEST_CMD) ) || r=$$?; ( $(GOTEST_NORACE_CMD) ) || [ $$r -ne 0 ] || r=$$?; \
		if [ $$r -eq 0 ]; then gt="ok ($$((SECONDS - ts))s)"; else gt="FAIL ($$((SECONDS - ts))s)"; [ $$rc -ne 0 ] || rc=$$r; fi; \
		ts=$$SECONDS; if $(MAKE) --no-print-directory test-compat \
			COMPAT_RUNNING="$(K39_VERSION)=127.0.0.1:$(K39_PORT),$(K4_VERSION)=127.0.0.1:$(K4_PORT)"; \
		then compat="ok ($$((SECONDS - ts))s)"; else compat="FAIL ($$((SECONDS - ts))s)"; [ $$rc -ne 0 ] || rc=1; fi; \
	fi; \
	$(MAKE) --no-print-directory kafka-down test-nodes-down || true; trap - EXIT; \
	passed=$$(grep -cE '^ *--- PASS:' "$(GOTEST_LOG)" 2>/dev/null || true); \
	failed=$$(grep -cE '^ *--- FAIL:' "$(GOTEST_LOG)" 2>/dev/null || true); \
	skipped=$$(grep -cE '^ *--- SKIP:' "$(GOTEST_LOG)" 2>/dev/null || true); \
	[ "$$gt" != - ] || { passed=0; failed=0; skipped=0; }; \
	echo; echo "== make test summary: Kafka $(K39_VERSION) @127.0.0.1:$(K39_PORT), $(K4_VERSION) @127.0.0.1:$(K4_PORT)"; \
	echo "kafka-up $$up; vet $$vet; gencheck $$gen; go test $$gt; test-compat $$compat; total $$((SECONDS - t0))s; exit $$rc"; \
	echo "tests: $${passed:-0} passed, $${failed:-0} failed, $${skipped:-0} skipped"; \
	exit $$rc

fuzz:
	@for pkg in . ./cmd/kpax; do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz: $$pkg $$f for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
		done; \
	done

bench-unit:
	$(GO) test -run '^$$' -bench . -benchmem .

# Side-by-side benchmarks (bench/ is a module of its own, so its peers stay out of go.mod): a sink
# broker that kbench starts as a separate process, and a real Kafka, started here on
# BENCH_KAFKA_PORT (and stopped however it ends) unless BENCH_KAFKA names one. kbench reads
# BENCH_N, BENCH_REPS, BENCH_MATRIX (default|full) and BENCH_NOTE from the environment.
BENCH_KAFKA      ?=
BENCH_KAFKA_PORT ?= 25092
BENCH_RUN_DIR    ?= $(or $(TMPDIR),/tmp)/kpax-bench-kafka
BENCH_FLAGS      ?=
bench:
	@bin=$$(mktemp "$${TMPDIR:-/tmp}/kbench.XXXXXX"); \
	trap 'rm -f "$$bin"' EXIT; \
	(cd bench && $(GO) build -o "$$bin" ./cmd/kbench); \
	addr="$(BENCH_KAFKA)"; \
	if [ -z "$$addr" ]; then \
		$(KAFKA) fetch $(K4_VERSION); \
		trap 'rm -f "$$bin"; KPAX_RUN_DIR=$(BENCH_RUN_DIR) $(CURDIR)/$(KAFKA) stop kbench' EXIT; \
		KPAX_RUN_DIR=$(BENCH_RUN_DIR) $(KAFKA) start kbench $(K4_VERSION) $(BENCH_KAFKA_PORT); \
		addr=127.0.0.1:$(BENCH_KAFKA_PORT); \
	fi; \
	"$$bin" -kafka "$$addr" -kafka-version $(K4_VERSION) -out $(CURDIR)/bench/results $(BENCH_FLAGS)

# kpax and franz-go under the same seeded fault schedule (bench/cmd/kchaos): a 3-node cluster of its
# own on CHAOS_PORT..+2 (controllers +1000) under CHAOS_RUN_DIR, stopped however the run ends, unless
# CHAOS_KAFKA names running brokers (comma-separated). The table goes to stdout and CHAOS_OUT.
CHAOS_KAFKA    ?=
CHAOS_PORT     ?= 33092
CHAOS_RUN_DIR  ?= $(or $(TMPDIR),/tmp)/kpax-chaos-kafka
CHAOS_OUT      ?= $(CURDIR)/bench/results/chaos.md
CHAOS_FLAGS    ?= -seeds 1,2,3 -rate 2000 -dur 8s
chaos:
	@bin=$$(mktemp "$${TMPDIR:-/tmp}/kchaos.XXXXXX"); \
	trap 'rm -f "$$bin"' EXIT; \
	(cd bench && $(GO) build -o "$$bin" ./cmd/kchaos); \
	addr="$(CHAOS_KAFKA)"; \
	if [ -z "$$addr" ]; then \
		$(KAFKA) fetch $(K4_VERSION); \
		trap 'rm -f "$$bin"; KPAX_RUN_DIR=$(CHAOS_RUN_DIR) $(CURDIR)/$(KAFKA) cluster-stop kchaos' EXIT; \
		KPAX_RUN_DIR=$(CHAOS_RUN_DIR) $(KAFKA) cluster-start kchaos $(K4_VERSION) $(CHAOS_PORT); \
		addr=$$(KPAX_RUN_DIR=$(CHAOS_RUN_DIR) $(KAFKA) bootstrap kchaos); \
	fi; \
	"$$bin" -brokers "$$addr" $(CHAOS_FLAGS) | tee "$(CHAOS_OUT)"
