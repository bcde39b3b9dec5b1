package s3_test

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/redis"
	"github.com/voldfs/voldfs/internal/testserver"
	"github.com/voldfs/voldfs/voldfstest"
)

// bigDir is the big-directory subtest's size: every entry is a few S3
// round trips.
const bigDir = 100

// TestFilesystem runs the filesystem suite with every key in S3 (inodes
// through the multi-key commit fallback, backend/txn, which voldfs adds on
// its own).
func TestFilesystem(t *testing.T) {
	endpoint := startServer(t)
	voldfstest.Run(t, voldfstest.Config{
		NewStore: func(t *testing.T) backend.Store { return openStore(t, endpoint) },
		BigDir:   bigDir,
	})
}

// TestFilesystemSplit runs the filesystem suite on the split layout the
// peers deploy at scale: inodes in Redis (native multi-key commits),
// blocks in S3.
func TestFilesystemSplit(t *testing.T) {
	endpoint := startServer(t)
	addr := startRedis(t)
	var n atomic.Int64
	voldfstest.Run(t, voldfstest.Config{
		NewStore: func(t *testing.T) backend.Store {
			s := redis.New(goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true}),
				redis.WithPrefix(fmt.Sprintf("split/%d/", n.Add(1))))
			t.Cleanup(func() { s.Close() })
			return s
		},
		NewBlocks: func(t *testing.T) backend.Store { return openStore(t, endpoint) },
		BigDir:    bigDir,
	})
}

// startRedis starts a redis-server (Debian's redis-server package) on a
// free loopback port, with no persistence and no eviction, and returns its
// address.
func startRedis(t testing.TB) string {
	t.Helper()
	bin := testserver.Binary(t, "redis-server")
	var lastErr error
	for range 3 {
		port := testserver.FreePorts(t, 1)[0]
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var out testserver.SyncBuffer
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir(),
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--maxmemory-policy", "noeviction")
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if lastErr = waitListening(addr, exited); lastErr == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			return addr
		}
		_ = cmd.Process.Kill()
		<-exited
		lastErr = fmt.Errorf("%w; output: %s", lastErr, out.Tail(2000))
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return ""
}
