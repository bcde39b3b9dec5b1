package etcd

// The tests run a real etcd cluster made of the `etcd` binary from Debian's
// etcd-server package (installed by .ci/run), not the embeddable
// go.etcd.io/etcd/server/v3/embed. Why:
//   - A separate process can be killed with SIGKILL and restarted from its data
//     directory, which is what the node-loss test must do; an embedded server
//     can only be closed politely, inside our own process.
//   - The embed package pulls the whole server (raft, bbolt, gRPC gateway,
//     OpenTelemetry, ...) into this module's test build; compiling that with
//     -race costs minutes on CI's two cores, every run.
//   - It exercises the client against a server version other than its own
//     (Debian ships 3.4), as users who run a distribution's etcd will.

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voldfs/voldfs/internal/testserver"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// member is one etcd process of a test cluster.
type member struct {
	name      string
	clientURL string
	peerURL   string
	args      []string
	log       *testserver.SyncBuffer
	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{} // closed when cmd has exited
}

// cluster is a test etcd cluster on loopback ports.
type cluster struct {
	t       testing.TB
	members []*member
}

// startCluster starts an n-member etcd cluster and waits until it serves
// requests. It is stopped in t.Cleanup. A member that exits during start-up
// (another process took its port meanwhile) makes it retry on other ports.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	bin := testserver.Binary(t, "etcd")
	for attempt := 1; ; attempt++ {
		c := &cluster{t: t}
		err := c.boot(bin, n)
		if err == nil {
			return c
		}
		for _, m := range c.members {
			c.kill(m)
		}
		if attempt == 3 {
			for _, m := range c.members {
				t.Logf("etcd member %s log (tail):\n%s", m.name, m.log.Tail(4000))
			}
			t.Fatalf("etcd cluster did not start: %v", err)
		}
		t.Logf("etcd cluster did not start (%v); retrying on other ports", err)
	}
}

// boot starts the members of a new cluster and waits until they serve.
func (c *cluster) boot(bin string, n int) error {
	t := c.t
	dir := t.TempDir()
	ports := testserver.FreePorts(t, 2*n)
	var initial []string
	for i := range n {
		m := &member{
			name:      fmt.Sprintf("m%d", i),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			log:       &testserver.SyncBuffer{},
		}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	for _, m := range c.members {
		m.args = []string{bin,
			"--name", m.name,
			"--data-dir", filepath.Join(dir, m.name),
			"--listen-client-urls", m.clientURL,
			"--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL,
			"--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", "voldfs-test",
			"--logger", "zap",
			"--log-outputs", "stderr",
			"--log-level", "warn",
		}
		c.start(m)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			c.kill(m)
		}
		if t.Failed() {
			for _, m := range c.members {
				t.Logf("etcd member %s log (tail):\n%s", m.name, m.log.Tail(4000))
			}
		}
	})
	return c.healthy(30 * time.Second)
}

// start starts (or restarts, from its data directory) member m.
func (c *cluster) start(m *member) {
	c.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(m.args[0], m.args[1:]...)
	cmd.Stdout = m.log
	cmd.Stderr = m.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start etcd member %s: %v", m.name, err)
	}
	m.cmd = cmd
	exited := make(chan struct{})
	m.exited = exited
	go func() { cmd.Wait(); close(exited) }()
}

// kill stops member m with SIGKILL (a crash, not a clean shutdown) and waits
// for the process to be gone.
func (c *cluster) kill(m *member) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

// endpoints returns the client URLs of all members.
func (c *cluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.clientURL)
	}
	return eps
}

// config returns a client configuration for the whole cluster.
func (c *cluster) config() clientv3.Config {
	return clientv3.Config{
		Endpoints:   c.endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	}
}

// waitHealthy waits until every running member answers a linearizable read,
// and fails the test if one does not.
func (c *cluster) waitHealthy(timeout time.Duration) {
	c.t.Helper()
	if err := c.healthy(timeout); err != nil {
		c.t.Fatal(err)
	}
}

// healthy waits until every running member answers a linearizable read. It
// gives up when a member exits or after timeout.
func (c *cluster) healthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, m := range c.members {
		m.mu.Lock()
		running, exited := m.cmd != nil, m.exited
		m.mu.Unlock()
		if !running {
			continue
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.clientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return fmt.Errorf("etcd client for %s: %w", m.name, err)
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = cli.Get(ctx, "health")
			cancel()
			if err == nil {
				break
			}
			select {
			case <-exited:
				cli.Close()
				return fmt.Errorf("etcd member %s exited: %s", m.name, m.log.Tail(1000))
			default:
			}
			if time.Now().After(deadline) {
				cli.Close()
				return fmt.Errorf("etcd member %s not healthy after %v: %w", m.name, timeout, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		cli.Close()
	}
	return nil
}

// leader returns the member that is the raft leader.
func (c *cluster) leader() *member {
	c.t.Helper()
	cli, err := clientv3.New(c.config())
	if err != nil {
		c.t.Fatalf("etcd client: %v", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range c.members {
		st, err := cli.Status(ctx, m.clientURL)
		if err != nil {
			continue
		}
		if st.Leader == st.Header.MemberId {
			return m
		}
	}
	c.t.Fatal("no etcd leader found")
	return nil
}
