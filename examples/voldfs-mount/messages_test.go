package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/internal/testserver"
)

// buildBinary builds the command into dir and returns its path.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "voldfs-mount")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// runBinary runs bin with args in dir and returns its exit code and stderr.
func runBinary(t *testing.T, bin, dir string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("run %v: %v; stderr %q", args, err, stderr.String())
	return 0, ""
}

// TestCommandLine runs the built command with bad command lines, stores that
// refuse and mounts that fail: each is its exact one-line error (the first
// line of stderr; a usage error adds the synopsis after it) and its exit
// code, and none leaves a file behind.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	work := filepath.Join(dir, "work")
	require.NoError(t, os.Mkdir(work, 0o755))
	mp := filepath.Join(work, "mnt")
	require.NoError(t, os.Mkdir(mp, 0o755))
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	ctx := context.Background()

	// plain: a filesystem with its blocks in its store; split: one with
	// them apart.
	plain, split, splitBlocks := filepath.Join(dir, "plain.db"), filepath.Join(dir, "split.db"), filepath.Join(dir, "blocks.db")
	for _, p := range []string{plain, split} {
		s, err := bolt.Open(p, nil)
		require.NoError(t, err)
		o := &voldfs.Options{}
		if p == split {
			o.Blocks, err = bolt.Open(splitBlocks, nil)
			require.NoError(t, err)
		}
		f, err := voldfs.Format(ctx, s, o)
		require.NoError(t, err)
		f.Close()
		s.Close()
		if o.Blocks != nil {
			o.Blocks.Close()
		}
	}
	mc := testserver.Memcached(t)
	ms, err := memcache.New(mc)
	require.NoError(t, err)
	f, err := voldfs.Format(ctx, ms, nil)
	require.NoError(t, err)
	f.Close()
	ms.Close()

	const usage = "\nusage: voldfs-mount [-store URL]"
	mcWant := "want memcache://HOST[:PORT][,HOST[:PORT]...]"
	cases := []struct {
		name string
		args []string
		code int
		// line is the first line of stderr; with a newline inside, the
		// beginning of stderr; ending in a newline, all of it.
		line string
	}{
		{"no arguments", nil, 2, "voldfs-mount: no MOUNTPOINT given: name the directory to mount the filesystem on (or give -fsck to check it)" + usage},
		{"two mountpoints", []string{"a", "b"}, 2, "voldfs-mount: one MOUNTPOINT wanted, got 2 arguments: a b (flags go before the MOUNTPOINT)" + usage},
		{"flag after mountpoint", []string{mp, "-ro"}, 2, "voldfs-mount: one MOUNTPOINT wanted, got 2 arguments: " + mp + " -ro (flags go before the MOUNTPOINT)" + usage},
		{"fsck with mountpoint", []string{"-fsck", mp}, 2, `voldfs-mount: -fsck checks without mounting: it takes no MOUNTPOINT (got "` + mp + `")` + usage},
		{"gc without fsck", []string{"-gc", mp}, 2, "voldfs-mount: -gc goes with -fsck" + usage},
		{"unknown flag", []string{"-mount", mp}, 2, "voldfs-mount: flag provided but not defined: -mount" + usage},
		{"bad duration", []string{"-attr-timeout", "soon", mp}, 2, `voldfs-mount: invalid value "soon" for flag -attr-timeout: parse error` + usage},
		{"help", []string{"-h"}, 0, "usage: voldfs-mount [-store URL] [-blocks URL] [-name FS] [-ro] [-debug] [-lock-timeout D] [-o allow_other] [-metrics ADDR] MOUNTPOINT"},

		{"bolt with a host", []string{"-store", "bolt://x.db", mp}, 2, `voldfs-mount: store "bolt://x.db": bolt://x.db names a host, and a bolt file has none: write bolt:x.db for a relative path, or bolt:///x.db for an absolute one`},
		{"no scheme", []string{"-store", "x.db", mp}, 2, `voldfs-mount: store "x.db": no scheme: want SCHEME:..., where SCHEME is one of bolt, etcd, mem, memcache, redis, redis+cluster`},
		{"unknown scheme", []string{"-store", "ftp://x", mp}, 2, `voldfs-mount: store "ftp://x": unknown scheme "ftp": want one of bolt, etcd, mem, memcache, redis, redis+cluster`},
		{"bolt option", []string{"-store", "bolt:x.db?sync=sometimes", mp}, 2, `voldfs-mount: store "bolt:x.db?sync=sometimes": option sync=sometimes: want sync=interval, always or none`},
		{"mem argument", []string{"-store", "mem:x", mp}, 2, `voldfs-mount: store "mem:x": mem takes nothing after the colon: want mem:`},
		{"memcache without servers", []string{"-store", "memcache:", mp}, 2, `voldfs-mount: store "memcache:": no server: ` + mcWant},
		{"etcd without endpoints", []string{"-store", "etcd:", mp}, 2, `voldfs-mount: store "etcd:": no endpoint: want etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]`},
		{"redis with two servers", []string{"-store", "redis://h:1,h:2", mp}, 2, `voldfs-mount: store "redis://h:1,h:2": redis:// names one server; for a Redis Cluster write redis+cluster://h:1,h:2`},
		{"password redacted", []string{"-store", "redis://:hunter2@h/x", mp}, 2, `voldfs-mount: store "redis://:xxxxx@h/x": path "/x": the path of a redis URL is a database number (a key prefix is ?prefix=P): want redis://HOST[:PORT][/DB]`},
		{"blocks is the store", []string{"-store", "bolt:x.db", "-blocks", "bolt:x.db", mp}, 2, "voldfs-mount: -blocks names the -store itself (bolt:x.db): give another store, or no -blocks" + usage},
		{"bad blocks URL", []string{"-store", "mem:", "-blocks", "bolt:", mp}, 2, `voldfs-mount: -blocks: store "bolt:": no file path: want bolt:PATH (relative or absolute) or bolt:///ABSOLUTE/PATH`},

		{"missing mountpoint", []string{"-store", "mem:", "nope"}, 1, "voldfs-mount: mountpoint nope does not exist: create the directory first"},
		{"file as mountpoint", []string{"-store", "mem:", file}, 1, "voldfs-mount: mountpoint " + file + ": not a directory"},
		{"unreachable memcached", []string{"-store", "memcache://127.0.0.1:1", mp}, 1, `voldfs-mount: store "memcache://127.0.0.1:1": voldfs: open "voldfs": memcache: get "voldfs/super": dial tcp 127.0.0.1:1: connect: connection refused`},
		{"unreachable etcd", []string{"-store", "etcd://127.0.0.1:1?dial-timeout=200ms", mp}, 1, `voldfs-mount: store "etcd://127.0.0.1:1?dial-timeout=200ms": etcd: no endpoint answers within 200ms: 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused`},
		{"unreachable redis", []string{"-store", "redis://127.0.0.1:1", mp}, 1, `voldfs-mount: store "redis://127.0.0.1:1": redis: connect to 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused`},
		{"read-only without a filesystem", []string{"-store", "bolt:new.db", "-ro", mp}, 1, `voldfs-mount: no filesystem "voldfs" in bolt:new.db (a mount without -ro formats one)`},
		{"fsck without a filesystem", []string{"-store", "bolt:new.db", "-fsck"}, 1, `voldfs-mount: no filesystem "voldfs" in bolt:new.db (a mount without -ro formats one)`},
		{"blocks on a filesystem without", []string{"-store", "bolt:" + plain, "-blocks", "bolt:blk.db", mp}, 1, `voldfs-mount: filesystem "voldfs" in bolt:` + plain + ` keeps its blocks with its inodes (it was formatted without -blocks): drop -blocks bolt:blk.db`},
		{"split without blocks", []string{"-store", "bolt:" + split, "-fsck"}, 1, `voldfs-mount: filesystem "voldfs" in bolt:` + split + ` keeps its blocks in a separate store (it was formatted with -blocks): give that store with -blocks URL`},
		{"split with other blocks", []string{"-store", "bolt:" + split, "-blocks", "bolt:blk.db", "-fsck"}, 1, `voldfs-mount: filesystem "voldfs" in bolt:` + split + `: the -blocks store bolt:blk.db holds another filesystem's blocks, or none`},
		{"split blocks store as the store", []string{"-store", "bolt:" + splitBlocks, "-fsck"}, 1, `voldfs-mount: no filesystem "voldfs" in bolt:` + splitBlocks + ` (a mount without -ro formats one)`},
		{"gc on memcached", []string{"-store", "memcache://" + mc, "-fsck", "-gc"}, 1, "voldfs-mount: -gc: store memcache://" + mc + " cannot list its keys, so no garbage can be found there (its blocks are freed only as commits replace them); run -fsck without -gc"},
		{"fsck on memcached", []string{"-store", "memcache://" + mc, "-fsck"}, 0, "voldfs-mount: fsck: 1 dirs, 0 files, 0 symlinks, 0 blocks, 0 problems, 0 repaired, orphans and garbage not checked (store memcache://" + mc + " cannot list its keys)"},
		{"fsck and gc on bolt", []string{"-store", "bolt:" + split, "-blocks", "bolt:" + splitBlocks, "-fsck", "-gc"}, 0, "voldfs-mount: fsck: 1 dirs, 0 files, 0 symlinks, 0 blocks, 0 problems, 0 repaired, 0 garbage blocks deleted"},
	}
	if fuseWorks() {
		// The kernel's refusals: fusermount3's own words, with its real
		// exit status (root tries mount(2) first, then fusermount3).
		fm, err := exec.LookPath("fusermount3")
		require.NoError(t, err)
		_, busy := testMount(t, "mem:")
		type tc = struct {
			name string
			args []string
			code int
			line string
		}
		cases = append(cases,
			tc{"bad mount option", []string{"-store", "bolt:new.db", "-o", "nosuchopt", mp}, 1, "voldfs-mount: formatted a new filesystem \"voldfs\" in bolt:new.db\n" +
				"voldfs-mount: mount " + mp + ": " + fm + ": unknown option 'nosuchopt' (exit status 1)\n"},
			tc{"busy mountpoint", []string{"-store", "mem:", busy}, 1, "voldfs-mount: mountpoint " + busy + ": busy: something is already mounted there"},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stderr := runBinary(t, bin, work, c.args...)
			assert.Equal(t, c.code, code, "exit code; stderr %q", stderr)
			switch first, _, _ := strings.Cut(stderr, "\n"); {
			case strings.HasSuffix(c.line, "\n"):
				assert.Equal(t, c.line, stderr)
			case strings.Contains(c.line, "\n"):
				assert.True(t, strings.HasPrefix(stderr, c.line), "stderr %q\nwant it to begin with %q", stderr, c.line)
			default:
				assert.Equal(t, c.line, first)
				if c.code == 1 {
					assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
				}
			}
			ents, err := os.ReadDir(work)
			require.NoError(t, err)
			if assert.Len(t, ents, 1, "files left in the working directory") {
				assert.Equal(t, "mnt", ents[0].Name())
			}
		})
	}
}

// fuseWorks reports whether this test can mount (or must: in CI).
func fuseWorks() bool {
	if os.Getenv("CI") != "" {
		return true
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return false
	}
	_, err := exec.LookPath("fusermount3")
	return err == nil
}

// TestMountedLines runs the command on a bolt file: it says it formatted
// the filesystem, that it mounted it and, after SIGTERM or an unmount by
// fusermount3, that it unmounted it, and exits 0.
func TestMountedLines(t *testing.T) {
	requireFUSE(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	mp := filepath.Join(dir, "mnt")
	require.NoError(t, os.Mkdir(mp, 0o755))
	db := filepath.Join(dir, "fs.db")
	for i, stop := range []string{"SIGTERM", "fusermount3 -u"} {
		stderr := &lockedBuffer{}
		cmd := exec.Command(bin, "-store", "bolt:"+db, "-name", "lines", mp)
		cmd.Stderr = stderr
		require.NoError(t, cmd.Start())
		mounted := "voldfs-mount: mounted filesystem \"lines\" of bolt:" + db + " on " + mp + "\n"
		for j := 0; j < 100 && !strings.Contains(stderr.String(), mounted); j++ {
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(stderr.String(), mounted) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no mounted line; stderr %q", stderr.String())
		}
		assert.Error(t, checkMountpoint(mp), "the mounted line came before the mount")
		if stop == "SIGTERM" {
			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		} else {
			out, err := exec.Command("fusermount3", "-u", mp).CombinedOutput()
			require.NoError(t, err, "fusermount3 -u: %s", out)
		}
		assert.NoError(t, cmd.Wait(), "exit after %s", stop)
		want := mounted + "voldfs-mount: at unmount: stats over <d>: <summary>\n" + "voldfs-mount: unmounted " + mp + "\n"
		if i == 0 {
			want = "voldfs-mount: formatted a new filesystem \"lines\" in bolt:" + db + "\n" + want
		}
		// The summary line (metrics.go) carries figures that vary: compare its shape.
		got := regexp.MustCompile(`(at unmount: stats over )\S+: [^\n]*ops[^\n]*`).ReplaceAllString(stderr.String(), "${1}<d>: <summary>")
		assert.Equal(t, want, got, "after %s", stop)
	}
}
