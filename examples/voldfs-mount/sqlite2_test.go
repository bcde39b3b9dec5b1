package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/internal/testserver"
)

// TestSQLiteTwoMounts runs one SQLite writer process on each of two mounts
// of one memcached filesystem, and a reader on the first, in
// rollback-journal mode: SQLite's byte-range locks exclude across the
// mounts, and what one mount's writer committed is what the other reads
// once it holds the lock. The reader's counts only grow, the final count
// is exact, and integrity_check is ok on both mounts.
func TestSQLiteTwoMounts(t *testing.T) {
	bin := needBinary(t, "sqlite3")
	store := "memcache://" + testserver.Memcached(t)
	_, ma := testMount(t, store)
	_, mb := testMount(t, store)
	dbs := []string{filepath.Join(ma, "test.db"), filepath.Join(mb, "test.db")}

	setup, err := startSQLite(bin, dbs[0])
	require.NoError(t, err)
	out, err := setup.do("PRAGMA journal_mode=DELETE;")
	require.NoError(t, err)
	require.Equal(t, "delete", out)
	require.NoError(t, setup.must("CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, n INTEGER, pad TEXT);"))
	require.NoError(t, setup.close())

	perWriter := 60
	if testing.Short() {
		perWriter = 20
	}
	start := time.Now()
	var wg sync.WaitGroup
	defer wg.Wait() // the writers report to t: they end first
	done := make(chan struct{})
	retries := make([]int, len(dbs))
	for w, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The pause lets the other mount's writer in: SQLite's busy
			// handler polls, and a writer that relocks at once would run
			// all its transactions in one burst.
			n, err := sqliteWriter(bin, db, w, perWriter, 2*time.Millisecond)
			retries[w] += n
			if err != nil {
				t.Errorf("writer on mount %d: %v", w, err)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	r, err := startSQLite(bin, dbs[0])
	require.NoError(t, err)
	defer r.close()
	count := func(r *sqliteProc) (int, error) {
		out, err := r.do("SELECT count(*) FROM t;")
		for err == nil && busy(out) {
			out, err = r.do("SELECT count(*) FROM t;")
		}
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(out)
	}
	prev, reads := -1, 0
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		case <-time.After(5 * time.Millisecond):
		}
		n, err := count(r)
		require.NoError(t, err, "reader")
		if n < prev {
			t.Errorf("reader: count went from %d to %d", prev, n)
		}
		prev, reads = n, reads+1
	}
	want := fmt.Sprintf("%d|%d", 2*perWriter, 2*perWriter)
	for i, db := range dbs {
		c, err := startSQLite(bin, db)
		require.NoError(t, err)
		out, err := c.do("PRAGMA integrity_check;")
		assert.NoError(t, err)
		assert.Equal(t, "ok", out, "integrity_check on mount %d", i)
		out, err = c.do("SELECT count(*), count(DISTINCT w || '-' || n) FROM t;")
		assert.NoError(t, err)
		assert.Equal(t, want, out, "final count on mount %d", i)
		// The writers took turns: each wrote after reading the other's
		// commits (else the test proves nothing across mounts).
		out, err = c.do("SELECT count(*) FROM t a JOIN t b ON b.id = a.id + 1 WHERE a.w != b.w;")
		assert.NoError(t, err)
		turns, _ := strconv.Atoi(out)
		assert.Positive(t, turns, "turns between the writers: %q", out)
		if i == 0 {
			t.Logf("%d turns between the writers", turns)
		}
		assert.NoError(t, c.close())
	}
	t.Logf("2 mounts x 1 writer x %d transactions (%v retries after SQLITE_BUSY), %d counts: %v",
		perWriter, retries, reads, time.Since(start).Round(time.Millisecond))
}

// TestOpenRemovedElsewhere: a name the kernel still caches (entry window)
// whose file another mount removed, or removed and created again, opens
// the current file: the mount answers ESTALE and the kernel looks the
// name up again. (SQLite's journal, created and deleted by each
// transaction, hits this across two mounts.)
func TestOpenRemovedElsewhere(t *testing.T) {
	store := "memcache://" + testserver.Memcached(t)
	_, a := testMount(t, store)
	_, b := testMount(t, store)
	for _, again := range []bool{false, true} {
		name := fmt.Sprintf("j-%v", again)
		require.NoError(t, os.WriteFile(filepath.Join(a, name), []byte("old"), 0o644))
		_, err := os.Stat(filepath.Join(b, name)) // b caches the entry
		require.NoError(t, err)
		require.NoError(t, os.Remove(filepath.Join(a, name)))
		if again {
			require.NoError(t, os.WriteFile(filepath.Join(a, name), []byte("new"), 0o644))
		}
		f, err := os.OpenFile(filepath.Join(b, name), os.O_RDWR|os.O_CREATE, 0o644)
		require.NoError(t, err, "open %s in b", name)
		got, err := io.ReadAll(f)
		assert.NoError(t, err)
		assert.NoError(t, f.Close())
		want := ""
		if again {
			want = "new"
		}
		assert.Equal(t, want, string(got), name)
	}
}
