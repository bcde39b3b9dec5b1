package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend/memory"
)

var (
	promSample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? (-?[0-9]+)$`)
	promHelp   = regexp.MustCompile(`^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$`)
	promType   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$`)
)

// parseProm parses Prometheus text, failing t on any line that breaks the
// format: a sample before its family's TYPE, a repeated series, a counter
// not named _total. It returns the samples by series.
func parseProm(t *testing.T, text string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	types := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if m := promType.FindStringSubmatch(line); m != nil {
			require.NotContains(t, types, m[1], "TYPE twice: %q", line)
			types[m[1]] = m[2]
			if m[2] == "counter" {
				assert.True(t, strings.HasSuffix(m[1], "_total"), "counter %s", m[1])
			}
			continue
		}
		if promHelp.MatchString(line) {
			continue
		}
		m := promSample.FindStringSubmatch(line)
		require.NotNil(t, m, "not a sample: %q", line)
		require.Contains(t, types, m[1], "sample before its TYPE: %q", line)
		series := m[1] + m[2]
		require.NotContains(t, out, series, "series twice: %q", line)
		v, err := strconv.ParseInt(m[4], 10, 64)
		require.NoError(t, err)
		out[series] = v
	}
	require.NoError(t, sc.Err())
	return out
}

// TestPrometheusText: the text written for an FS's Stats parses, has a
// series for every op kind and store request kind, and counts what the FS
// did.
func TestPrometheusText(t *testing.T) {
	f, err := voldfs.Format(context.Background(), memory.New(), &voldfs.Options{BlockSize: 4096})
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.WriteFile("f", bytes.Repeat([]byte("x"), 10000), 0o644))
	var b bytes.Buffer
	writePrometheus(&b, f.Stats())
	got := parseProm(t, b.String())
	for _, k := range voldfs.OpKinds() {
		assert.Contains(t, got, `voldfs_ops_total{op="`+k+`"}`)
	}
	assert.Equal(t, int64(1), got[`voldfs_ops_total{op="write"}`])
	assert.Equal(t, int64(10000), got[`voldfs_written_bytes_total`])
	assert.Equal(t, int64(4), got[`voldfs_store_requests_total{store="block",kind="put"}`], "3 data blocks and an index node")
	assert.GreaterOrEqual(t, got[`voldfs_store_written_bytes_total{store="block"}`], int64(10000))
	assert.Contains(t, got, `voldfs_cache_hits_total{cache="attr"}`)
	assert.Contains(t, got, `voldfs_dirty_bytes`)
	line := statsLine(f.Stats(), 3*time.Second)
	assert.NotContains(t, line, "\n")
	assert.Contains(t, line, "stats over 3s: ")
	assert.Contains(t, line, "write 1")
}

// TestFsckProgressLines: -fsck prints a progress line at most every
// second, and none for the last call (the report follows).
func TestFsckProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := fsckProgress(&b)
	for _, ms := range []int{250, 500, 1000, 1250, 1900, 2100} {
		p(voldfs.FsckProgress{Phase: "walk", Inodes: ms, Elapsed: time.Duration(ms) * time.Millisecond})
	}
	p(voldfs.FsckProgress{Phase: "done", Elapsed: 5 * time.Second})
	assert.Equal(t, "voldfs-mount: fsck: walk: 1000 inodes, 0 blocks, 0 garbage blocks so far (1s)\n"+
		"voldfs-mount: fsck: walk: 2100 inodes, 0 blocks, 0 garbage blocks so far (2s)\n", b.String())
}

// TestMetricsFlag runs the binary with -metrics on a free port: /metrics
// parses and its write counter grows after a write through the real mount,
// /debug/vars is JSON with the same counters, SIGUSR1 prints one summary
// line, and the unmount prints another.
func TestMetricsFlag(t *testing.T) {
	requireFUSE(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "voldfs-mount")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mp := filepath.Join(dir, "mnt")
	require.NoError(t, os.Mkdir(mp, 0o755))
	stderr := &lockedBuffer{}
	cmd := exec.Command(bin, "-store", "mem:", "-metrics", "127.0.0.1:0", mp)
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	if !waitMounted(mp, true) {
		t.Fatalf("not mounted; stderr: %s", stderr.String())
	}
	// The mount is up before run prints its lines: wait for them.
	var m []string
	for end := time.Now().Add(10 * time.Second); m == nil && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		m = regexp.MustCompile(`metrics on (http://\S+)/metrics`).FindStringSubmatch(stderr.String())
	}
	require.NotNil(t, m, "no address line in %q", stderr.String())
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(m[1] + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	const write, written = `voldfs_ops_total{op="write"}`, `voldfs_written_bytes_total`
	before := parseProm(t, get("/metrics"))
	require.NoError(t, os.WriteFile(filepath.Join(mp, "f"), bytes.Repeat([]byte("y"), 70000), 0o644))
	after := parseProm(t, get("/metrics"))
	assert.Greater(t, after[write], before[write])
	assert.Equal(t, int64(70000), after[written]-before[written])
	assert.Equal(t, int64(1), after[`voldfs_ops_total{op="create"}`]-before[`voldfs_ops_total{op="create"}`])

	var vars struct{ Voldfs voldfs.Stats }
	require.NoError(t, json.Unmarshal([]byte(get("/debug/vars")), &vars))
	assert.Equal(t, after[written], vars.Voldfs.BytesWritten)

	require.NoError(t, cmd.Process.Signal(syscall.SIGUSR1))
	line := waitLine(t, stderr, "voldfs-mount: stats over ")
	var ops int64
	for _, n := range vars.Voldfs.Ops {
		ops += n
	}
	n := regexp.MustCompile(`: (\d+) ops \(`).FindStringSubmatch(line)
	require.NotNil(t, n, line)
	got, _ := strconv.ParseInt(n[1], 10, 64)
	assert.GreaterOrEqual(t, got, ops, "the ops counted by the time of /debug/vars")
	assert.Contains(t, line, "store requests")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err := cmd.Wait()
	exited = true
	require.NoError(t, err, "stderr: %s", stderr.String())
	waitLine(t, stderr, "voldfs-mount: at unmount: stats over ")
}

// waitLine waits up to 10 s for a line of b starting with prefix.
func waitLine(t *testing.T, b *lockedBuffer, prefix string) string {
	t.Helper()
	for i := 0; i < 100; i++ {
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no line %q in %q", prefix, b.String())
	return ""
}

// TestStatsReporter runs the reporter in this process (under -race in CI):
// scrapes while the FS works, a SIGUSR1 line, the closing line, and a
// second close that does nothing.
func TestStatsReporter(t *testing.T) {
	f, err := voldfs.Format(context.Background(), memory.New(), nil)
	require.NoError(t, err)
	defer f.Close()
	out := &lockedBuffer{}
	r, err := newStatsReporter("127.0.0.1:0", out)
	require.NoError(t, err)
	r.run(f)
	url := "http://" + r.ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			f.WriteFile(fmt.Sprint("f", i%5), []byte("data"), 0o644)
		}
	}()
	for range 5 {
		resp, err := http.Get(url + "/metrics")
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		parseProm(t, string(b))
	}
	<-done
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	waitLine(t, out, "voldfs-mount: stats over ")
	r.close()
	r.close()
	assert.Equal(t, 1, strings.Count(out.String(), "at unmount: "), out.String())
	assert.Contains(t, out.String(), "write 50")
	_, err = http.Get(url + "/metrics")
	assert.Error(t, err, "the server is closed")

	_, err = newStatsReporter("127.0.0.1:-1", out)
	assert.ErrorContains(t, err, "-metrics")
}
