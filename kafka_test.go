package kpax

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file starts and controls real Kafka nodes for tests that need to
// hurt a broker (restart, pause, kill) or need a 3-node cluster. Every node
// runs through the project's script (scripts/kafka.sh, found through
// KPAX_KAFKA_SH, which `make test` sets). Nodes a test binary starts are
// stopped by TestMain.
//
// Ports: KPAX_TEST_PORT_BASE (default 23092). The shared 3-node cluster
// takes BASE..BASE+2; private single nodes take BASE+10, BASE+20, ...; each
// node's controller listens 1000 above its broker port. Two test binaries
// running at once on one machine need different bases (and different
// KPAX_RUN_DIR).

// testNodes records what this test binary started, for stopAllTestNodes.
type testNodes struct {
	mu      sync.Mutex
	names   []string
	next    int // private node counter
	cluster *testCluster
	err     error // why the cluster failed to start

	secure    *secureTestNode
	secureErr error // why the secure node failed to start
}

// started is the test binary's node registry. Test-only state: it lives in
// a _test.go file and is touched only by test helpers and TestMain.
var started testNodes

func kafkaScript(t testing.TB) string {
	t.Helper()
	sh := os.Getenv("KPAX_KAFKA_SH")
	if sh == "" {
		t.Skip("no Kafka script: set KPAX_KAFKA_SH=scripts/kafka.sh (make test does)")
	}
	return sh
}

func testPortBase() int {
	if s := os.Getenv("KPAX_TEST_PORT_BASE"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 23092
}

// testKafkaVersion is the version of nodes tests start: KPAX_TEST_NODE_VERSION
// or the newest 4.x the Makefile fetches.
func testKafkaVersion() string {
	if v := os.Getenv("KPAX_TEST_NODE_VERSION"); v != "" {
		return v
	}
	return "4.4.0"
}

// runKafkaScript runs scripts/kafka.sh with args and returns its output.
func runKafkaScript(sh string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, sh, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kafka.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// testNode is one Kafka node a test controls: a private single node, or a
// member of the shared cluster.
type testNode struct {
	sh   string
	name string // kafka.sh node name: "p39102" or "kc/0"
	Addr string
	ID   int32 // node.id
}

func (n *testNode) script(t testing.TB, args ...string) {
	t.Helper()
	if _, err := runKafkaScript(n.sh, args...); err != nil {
		t.Fatal(err)
	}
}

// Signal sends sig ("STOP", "CONT", "KILL", "TERM") to the node's JVM.
func (n *testNode) Signal(t testing.TB, sig string) { t.Helper(); n.script(t, "signal", n.name, sig) }

// Restart stops the node (if running) and starts it on the same data,
// waiting until it answers.
func (n *testNode) Restart(t testing.TB) { t.Helper(); n.script(t, "restart", n.name) }

// Stop stops the node (SIGTERM, then SIGKILL).
func (n *testNode) Stop(t testing.TB) { t.Helper(); n.script(t, "stop", n.name) }

// startTestNode starts a private single-node broker for one test, stopped
// when the test ends. Use it for faults that would disturb other tests.
func startTestNode(t testing.TB, extraProps ...string) *testNode {
	t.Helper()
	sh := kafkaScript(t)
	started.mu.Lock()
	started.next++
	port := testPortBase() + 10*started.next
	name := "p" + strconv.Itoa(port)
	started.names = append(started.names, name)
	started.mu.Unlock()
	cmd := exec.Command(sh, "start", name, testKafkaVersion(), strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "KPAX_KAFKA_EXTRA_PROPS="+strings.Join(extraProps, "\n"))
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("starting node %s: %v\n%s", name, err, out)
	}
	t.Logf("node %s (Kafka %s) on 127.0.0.1:%d up in %v", name, testKafkaVersion(), port, time.Since(t0).Round(time.Millisecond))
	n := &testNode{sh: sh, name: name, Addr: "127.0.0.1:" + strconv.Itoa(port), ID: 1}
	t.Cleanup(func() { runKafkaScript(sh, "stop", name) })
	return n
}

// secureTestNode is a node with SASL and TLS listeners (kafka.sh
// secure-start), shared by the tests of one binary and stopped by TestMain.
// Its users (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512) are alice with
// password alice-secret and bob with bob-secret.
type secureTestNode struct {
	*testNode            // Addr: the PLAINTEXT listener
	SASLPlaintext string // SASL_PLAINTEXT listener
	SSL           string // SSL listener
	SASLSSL       string // SASL_SSL listener
	CAFile        string // PEM of the CA that signed the broker's certificate
}

// startSecureTestNode returns the secure node, starting it on first use.
// Tests must not hurt it (restart, pause): it is shared.
func startSecureTestNode(t testing.TB) *secureTestNode {
	t.Helper()
	sh := kafkaScript(t)
	started.mu.Lock()
	defer started.mu.Unlock()
	if started.secureErr != nil {
		t.Fatalf("the secure node failed to start earlier: %v", started.secureErr)
	}
	if started.secure != nil {
		return started.secure
	}
	started.next++
	port := testPortBase() + 10*started.next
	name := "s" + strconv.Itoa(port)
	started.names = append(started.names, name)
	t0 := time.Now()
	out, err := runKafkaScript(sh, "secure-start", name, testKafkaVersion(), strconv.Itoa(port))
	if err != nil {
		started.secureErr = err
		t.Fatal(err)
	}
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.Contains(k, " ") {
			kv[k] = v
		}
	}
	n := &secureTestNode{testNode: &testNode{sh: sh, name: name, Addr: kv["plaintext"], ID: 1},
		SASLPlaintext: kv["sasl_plaintext"], SSL: kv["ssl"], SASLSSL: kv["sasl_ssl"], CAFile: kv["ca_file"]}
	if n.Addr == "" || n.SASLPlaintext == "" || n.SSL == "" || n.SASLSSL == "" || n.CAFile == "" {
		started.secureErr = fmt.Errorf("kafka.sh secure-start printed no addresses:\n%s", out)
		t.Fatal(started.secureErr)
	}
	t.Logf("secure node %s (Kafka %s) up in %v: SASL_PLAINTEXT %s, SSL %s, SASL_SSL %s", name, testKafkaVersion(),
		time.Since(t0).Round(time.Millisecond), n.SASLPlaintext, n.SSL, n.SASLSSL)
	started.secure = n
	return n
}

// testCluster is the shared 3-node cluster (node IDs 1-3), started by the
// first test that asks for it and stopped by TestMain. A test that hurts a
// node must heal it (Restart) before it ends; Heal does it for all.
type testCluster struct {
	sh    string
	name  string
	Nodes [3]*testNode
}

// Bootstrap is the comma-separated list of the cluster's broker addresses.
func (c *testCluster) Bootstrap() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr)
	}
	return out
}

// Node returns the node with the given node ID (1-3).
func (c *testCluster) Node(id int32) *testNode { return c.Nodes[id-1] }

// Heal restarts nodes that are not running (or paused) and waits until
// every node answers.
func (c *testCluster) Heal(t testing.TB) {
	t.Helper()
	for _, n := range c.Nodes {
		out, _ := runKafkaScript(c.sh, "status", n.name)
		switch {
		case strings.Contains(out, " paused "):
			n.Signal(t, "CONT")
			n.script(t, "wait", n.name)
		case !strings.Contains(out, " running "):
			n.Restart(t)
		}
	}
}

// sharedCluster returns the 3-node cluster, starting it on first use.
// Tests using it must not run in parallel with each other.
func sharedCluster(t testing.TB) *testCluster {
	t.Helper()
	sh := kafkaScript(t)
	started.mu.Lock()
	defer started.mu.Unlock()
	if started.err != nil {
		t.Fatalf("the test cluster failed to start earlier: %v", started.err)
	}
	if started.cluster != nil {
		started.cluster.Heal(t)
		return started.cluster
	}
	base := testPortBase()
	name := "kc" + strconv.Itoa(base)
	t0 := time.Now()
	if _, err := runKafkaScript(sh, "cluster-start", name, testKafkaVersion(), strconv.Itoa(base)); err != nil {
		started.err = err
		t.Fatal(err)
	}
	t.Logf("3-node cluster %s (Kafka %s) up in %v", name, testKafkaVersion(), time.Since(t0).Round(time.Millisecond))
	started.names = append(started.names, name)
	c := &testCluster{sh: sh, name: name}
	for i := range c.Nodes {
		c.Nodes[i] = &testNode{sh: sh, name: name + "/" + strconv.Itoa(i),
			Addr: "127.0.0.1:" + strconv.Itoa(base+i), ID: int32(i + 1)}
	}
	started.cluster = c
	return c
}

// stopAllTestNodes stops every node this test binary started.
func stopAllTestNodes() {
	sh := os.Getenv("KPAX_KAFKA_SH")
	started.mu.Lock()
	names := started.names
	started.names = nil
	started.mu.Unlock()
	if sh == "" {
		return
	}
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runKafkaScript(sh, "stop", name)
		}()
	}
	wg.Wait()
}
