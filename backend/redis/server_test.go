package redis

// Test servers: real redis-server processes from Debian's redis-server
// package (redis-cli comes with it, in redis-tools), started on free loopback
// ports and killed in t.Cleanup.

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/voldfs/voldfs/internal/testserver"
)

// startServer starts one redis-server, in cluster mode if cluster is set,
// waits until it answers PING and returns its address. A server that exits
// during start-up (another process took its port meanwhile) is retried on
// other ports.
func startServer(t testing.TB, cluster bool) string {
	t.Helper()
	bin := testserver.Binary(t, "redis-server")
	for attempt := 1; ; attempt++ {
		addr, err := tryServer(t, bin, cluster)
		if err == nil {
			return addr
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("%v; retrying on other ports", err)
	}
}

func tryServer(t testing.TB, bin string, cluster bool) (string, error) {
	ports := testserver.FreePorts(t, 2)
	dir := t.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	args := []string{
		"--port", strconv.Itoa(ports[0]),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "",
		"--maxmemory-policy", "noeviction",
	}
	if cluster {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(ports[1]),
			"--cluster-node-timeout", "5000",
		)
	}
	var log testserver.SyncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout = &log
	cmd.Stderr = &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	kill := sync.OnceFunc(func() {
		cmd.Process.Kill()
		<-done
	})
	t.Cleanup(func() {
		kill()
		if t.Failed() {
			t.Logf("redis-server %s log (tail):\n%s", addr, log.Tail(3000))
		}
	})
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return addr, nil
		}
		select {
		case <-done:
			return "", fmt.Errorf("redis-server %s exited: %s", addr, log.Tail(1000))
		default:
		}
		if time.Now().After(deadline) {
			kill()
			return "", fmt.Errorf("redis-server %s not answering: %v\n%s", addr, err, log.Tail(3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startStandalone starts a standalone redis-server and returns its address.
func startStandalone(t testing.TB) string {
	t.Helper()
	return startServer(t, false)
}

// startCluster starts a Redis Cluster of n masters without replicas, waits
// until every node reports cluster_state:ok and returns the addresses.
func startCluster(t testing.TB, n int) []string {
	t.Helper()
	cli := testserver.Binary(t, "redis-cli")
	var addrs []string
	for range n {
		addrs = append(addrs, startServer(t, true))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("cluster node %s not ok: %v\n%s", addr, err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Close()
	}
	return addrs
}

// newClient returns a client for the servers at addrs: a cluster client if
// cluster is set, else a plain one.
func newClient(addrs []string, cluster bool) goredis.UniversalClient {
	return goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:                 addrs,
		IsClusterMode:         cluster,
		ContextTimeoutEnabled: true,
	})
}
