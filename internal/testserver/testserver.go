// Package testserver starts throwaway servers for tests: each on a free
// loopback port, stopped when the test ends.
//
// A missing server binary skips the test, except in CI (CI set in the
// environment), where it fails it: CI must install the server.
package testserver

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Memcached starts a memcached on a free loopback port and returns its
// address, "127.0.0.1:PORT". The server runs with -M (it refuses writes
// rather than evicting when full), 256 MiB of memory and no UDP, and is
// killed when t ends.
func Memcached(t testing.TB) string {
	t.Helper()
	return MemcachedMemory(t, 256)
}

// MemcachedMemory is Memcached with mb MiB of memory (-m): a small one
// fills up and refuses writes.
func MemcachedMemory(t testing.TB, mb int) string {
	t.Helper()
	bin := Binary(t, "memcached")
	args := []string{"-l", "127.0.0.1", "-U", "0", "-M", "-m", strconv.Itoa(mb)}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses root without -u
	}
	return start(t, bin, args, "-p")
}

// Binary finds a server binary in PATH or the system directories servers
// are installed in, or ends the test (see the package comment).
func Binary(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/sbin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("testserver: %s not installed (CI must install it: see .ci/run)", name)
	}
	t.Skipf("testserver: %s not installed; install it to run this test (CI fails without it)", name)
	return ""
}

// start runs bin with args plus portFlag and a free port, waits until the
// port accepts connections, and returns the address. Another process can take
// the port between choosing it and the server binding it, so start retries.
func start(t testing.TB, bin string, args []string, portFlag string) string {
	t.Helper()
	var lastErr error
	for range 5 {
		port := FreePorts(t, 1)[0]
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin, append(args, portFlag, strconv.Itoa(port))...)
		out := &SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("testserver: start %s: %v", bin, err)
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
		lastErr = fmt.Errorf("%w; output: %s", lastErr, out.String())
	}
	t.Fatalf("testserver: %s did not start: %v", bin, lastErr)
	return ""
}

// waitListening polls addr until it accepts a connection, the process exits,
// or 10 s pass.
func waitListening(addr string, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("server exited before listening on %s: %v", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("server not listening on %s after 10s", addr)
}

// SyncBuffer collects a server's output from the goroutines exec starts,
// safe to read while it is written.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Tail returns the last n bytes written.
func (b *SyncBuffer) Tail(n int) string {
	s := b.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1 (free when
// chosen: a server started on one may still find it taken, and should retry).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testserver: free port: %v", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// Silent starts a TCP server on 127.0.0.1 that accepts connections, reads
// requests and never answers, for testing that calls end at their context's deadline. It stops
// when t ends.
func Silent(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
			go io.Copy(io.Discard, c) // requests are read, so writes never block
		}
	}()
	return l.Addr().String()
}
