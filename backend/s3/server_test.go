package s3_test

// Test servers: versitygw (go install github.com/versity/versitygw/cmd/versitygw,
// see .ci/run) serving S3 from a temporary directory with its posix
// backend, started on a free loopback port and killed in t.Cleanup.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
	_ "github.com/voldfs/voldfs/backend/s3" // registers s3:
	"github.com/voldfs/voldfs/internal/testserver"
)

const (
	testAccess = "voldfs-test"
	testSecret = "voldfs-test-secret"
	testBucket = "voldfs"
)

// startServer starts versitygw on a fresh directory holding one bucket,
// testBucket, and returns its endpoint, "http://127.0.0.1:PORT".
func startServer(t testing.TB) string {
	t.Helper()
	return startServerIn(t, t.TempDir())
}

// startServerIn is startServer serving the directory root.
func startServerIn(t testing.TB, root string) string {
	t.Helper()
	bin := testserver.Binary(t, "versitygw")
	if err := os.Mkdir(filepath.Join(root, testBucket), 0o755); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 3 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testserver.FreePorts(t, 1)[0]))
		var out testserver.SyncBuffer
		cmd := exec.Command(bin, "--access", testAccess, "--secret", testSecret,
			"--port", addr, "--quiet", "posix", root)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start versitygw: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if lastErr = waitListening(addr, exited); lastErr == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			return "http://" + addr
		}
		_ = cmd.Process.Kill()
		<-exited
		lastErr = fmt.Errorf("%w; output: %s", lastErr, out.Tail(2000))
	}
	t.Fatalf("versitygw did not start: %v", lastErr)
	return ""
}

func waitListening(addr string, exited <-chan error) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("server exited before listening on %s: %v", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("server not listening on %s after 20s", addr)
}

// storeURL returns the s3:// URL of a fresh prefix of the test bucket on
// the server at endpoint.
func storeURL(endpoint string, query url.Values) *url.URL {
	var b [6]byte
	_, _ = rand.Read(b[:])
	q := url.Values{
		"endpoint":   {endpoint},
		"access-key": {testAccess},
		"secret-key": {testSecret},
	}
	for k, v := range query {
		q[k] = v
	}
	return &url.URL{Scheme: "s3", Host: testBucket, Path: "/t-" + hex.EncodeToString(b[:]), RawQuery: q.Encode()}
}

// openStore opens a Store on a fresh prefix of the test bucket and closes
// it when t ends. query adds URL parameters.
func openStore(t testing.TB, endpoint string, query ...string) backend.Store {
	return openStoreAt(t, endpoint, "", query...)
}

func openStoreAt(t testing.TB, endpoint, path string, query ...string) backend.Store {
	t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	u := storeURL(endpoint, q)
	if path != "" {
		u.Path = path
	}
	s, err := backend.OpenURL(context.Background(), u.String())
	if err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
