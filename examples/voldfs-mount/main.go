package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// config is what the command line asks for.
type config struct {
	store       string
	blocks      string // optional separate store for blocks
	name        string
	readOnly    bool
	debug       bool
	options     string // -o, comma separated
	attrTimeout time.Duration
	fsck        bool
	repair, gc  bool
	grace       time.Duration
	lockTimeout time.Duration
	mountpoint  string
	metrics     string // -metrics ADDR (metrics.go)
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	var c config
	fl := flag.NewFlagSet("voldfs-mount", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&c.store, "store", "bolt:voldfs.db", "store `URL`: bolt:PATH, mem:, or memcache://HOST:PORT[,HOST:PORT...]")
	fl.StringVar(&c.blocks, "blocks", "", "optional separate store `URL` for data blocks (inodes stay in -store); fixed at format time")
	fl.StringVar(&c.name, "name", voldfs.DefaultName, "filesystem `name` in the store")
	fl.BoolVar(&c.readOnly, "ro", false, "mount read-only")
	fl.BoolVar(&c.debug, "debug", false, "log every FUSE request")
	fl.StringVar(&c.options, "o", "", "comma-separated mount `options` (allow_other, ...)")
	fl.DurationVar(&c.attrTimeout, "attr-timeout", time.Second, "attribute and entry cache window (0: strict)")
	fl.BoolVar(&c.fsck, "fsck", false, "check the filesystem and exit instead of mounting")
	fl.BoolVar(&c.repair, "repair", false, "with -fsck: fix dangling entries, link counts and orphans")
	fl.BoolVar(&c.gc, "gc", false, "with -fsck: delete unreferenced blocks (stores that list keys: bolt, mem)")
	fl.DurationVar(&c.lockTimeout, "lock-timeout", voldfs.DefaultLockTimeout, "how long this mount may be unreachable before other clients break its locks")
	fl.DurationVar(&c.grace, "grace", time.Hour, "with -fsck: leave objects younger than this alone (clients may be using them)")
	addMetricsFlag(fl, &c)
	fl.Usage = func() {
		fmt.Fprintf(stderr, "usage: voldfs-mount [-store URL] [-blocks URL] [-name FS] [-ro] [-debug] [-lock-timeout D] [-o allow_other] MOUNTPOINT\n"+
			"       voldfs-mount [-store URL] [-blocks URL] [-name FS] -fsck [-repair] [-gc] [-grace D]\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case c.fsck && fl.NArg() == 0:
	case !c.fsck && fl.NArg() == 1:
		c.mountpoint = fl.Arg(0)
	default:
		fl.Usage()
		return nil, flag.ErrHelp
	}
	return &c, nil
}

func run(args []string, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "voldfs-mount: %v\n", oneLine(err))
		return 1
	}
	if c.fsck {
		return runFsck(c, stderr)
	}
	stats, err := newStatsReporter(c.metrics, stderr)
	if err != nil {
		return fail(err)
	}
	defer stats.close() // the summary line at unmount
	m, err := mount(c, stderr)
	if err != nil {
		return fail(err)
	}
	stats.run(m.vfs)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		for range sigs {
			if err := m.unmount(); err != nil {
				fmt.Fprintf(stderr, "voldfs-mount: %v; close the files in use and signal again\n", oneLine(err))
			}
		}
	}()
	m.server.Wait()
	stats.close()
	if err := m.close(); err != nil {
		return fail(err)
	}
	return 0
}

// oneLine keeps an error message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// mounted is a running mount.
type mounted struct {
	server *fuse.Server
	vfs    *voldfs.FS
	store  backend.Store
	dir    string
}

// unmount asks the kernel to unmount; it retries for a moment while the
// mount is busy.
func (m *mounted) unmount() error {
	var err error
	for i := 0; i < 10; i++ {
		if err = m.server.Unmount(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("unmount %s: %w", m.dir, err)
}

// close releases the filesystem and the store after the server stopped.
func (m *mounted) close() error {
	m.vfs.Close()
	return m.store.Close()
}

// openFS opens the store and the filesystem in it, formatting an empty
// store (and saying so on stderr).
func openFS(c *config, stderr io.Writer) (*voldfs.FS, backend.Store, error) {
	store, err := openStore(c.store)
	if err != nil {
		return nil, nil, err
	}
	o := &voldfs.Options{Name: c.name, AttrTimeout: c.attrTimeout}
	if c.blocks != "" {
		blocks, err := openStore(c.blocks)
		if err != nil {
			store.Close()
			return nil, nil, fmt.Errorf("blocks %w", err)
		}
		o.Blocks = blocks
		store = storePair{store, blocks}
	}
	if c.attrTimeout <= 0 {
		o.AttrTimeout = -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inodes := store
	if p, ok := store.(storePair); ok {
		inodes = p.Store
	}
	vfs, err := voldfs.Open(ctx, inodes, o)
	if errors.Is(err, voldfs.ErrNotFormatted) && !c.readOnly && !c.fsck {
		if vfs, err = voldfs.Format(ctx, inodes, o); err == nil {
			fmt.Fprintf(stderr, "voldfs-mount: formatted a new filesystem %q in %s\n", c.name, c.store)
		}
	}
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("store %s: %w", c.store, err)
	}
	return vfs, store, nil
}

// storePair is the inodes store with the blocks store it was opened with;
// closing it closes both.
type storePair struct {
	backend.Store
	blocks backend.Store
}

func (p storePair) Close() error {
	return errors.Join(p.Store.Close(), p.blocks.Close())
}

// checkMountpoint refuses a mountpoint that is missing, not a directory, or
// already a mount point.
func checkMountpoint(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("mountpoint: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mountpoint %s: not a directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("mountpoint: %w", err)
	}
	pst, err := os.Stat(filepath.Dir(abs))
	if err != nil {
		return fmt.Errorf("mountpoint: %w", err)
	}
	s, p := st.Sys().(*syscall.Stat_t), pst.Sys().(*syscall.Stat_t)
	if s.Dev != p.Dev || s.Ino == p.Ino {
		return fmt.Errorf("mountpoint %s: busy: something is already mounted there", dir)
	}
	return nil
}

// mount opens the filesystem and mounts it on c.mountpoint.
func mount(c *config, stderr io.Writer) (*mounted, error) {
	if err := checkMountpoint(c.mountpoint); err != nil {
		return nil, err
	}
	vfs, store, err := openFS(c, stderr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	root, err := vfs.Inodes().GetAttr(ctx, voldfs.RootIno)
	cancel()
	if err != nil {
		vfs.Close()
		store.Close()
		return nil, fmt.Errorf("store %s: %w", c.store, err)
	}
	window := max(c.attrTimeout, 0)
	var zero time.Duration
	opts := &gofs.Options{
		MountOptions: fuse.MountOptions{
			FsName:       "voldfs",
			Name:         "voldfs",
			Debug:        c.debug,
			DirectMount:  os.Geteuid() == 0, // else (or if it fails) fusermount3
			MaxWrite:     1 << 20,
			MaxReadAhead: 1 << 20,
			EnableLocks:  true,
			// The kernel enforces modes and owners; the library does not.
			Options: []string{"default_permissions"},
		},
		EntryTimeout:    &window,
		AttrTimeout:     &window,
		NegativeTimeout: &zero,
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: voldfs.RootIno, Gen: root.Gen},
	}
	if c.readOnly {
		opts.Options = append(opts.Options, "ro")
	}
	for _, o := range strings.Split(c.options, ",") {
		switch o {
		case "":
		case "allow_other":
			opts.AllowOther = true
		case "default_permissions": // always on
		default:
			opts.Options = append(opts.Options, o)
		}
	}
	if c.lockTimeout > 0 {
		vfs.SetLockTimeout(c.lockTimeout)
	}
	vol := newVolume(vfs)
	raw := &rawFS{RawFileSystem: gofs.NewNodeFS(&node{vol: vol}, opts), owners: vol.owners}
	server, err := fuse.NewServer(raw, c.mountpoint, &opts.MountOptions)
	if err == nil {
		go server.Serve()
		err = server.WaitMount()
	}
	if err == nil {
		closeOnExecFUSE()
	}
	if err != nil {
		vfs.Close()
		store.Close()
		return nil, fmt.Errorf("mount %s: %w", c.mountpoint, err)
	}
	return &mounted{server: server, vfs: vfs, store: store, dir: c.mountpoint}, nil
}

// closeOnExecFUSE marks the process's /dev/fuse descriptors close-on-exec:
// go-fuse opens (or receives) them without it, so a child process would
// inherit the mount's connection and keep it alive, with nobody serving it,
// after this process dies (every access to the mount then hangs).
func closeOnExecFUSE() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if t, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && t == "/dev/fuse" {
			syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, syscall.FD_CLOEXEC)
		}
	}
}

// runFsck checks the filesystem and prints what it found.
func runFsck(c *config, stderr io.Writer) int {
	vfs, store, err := openFS(c, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "voldfs-mount: %v\n", oneLine(err))
		return 1
	}
	defer store.Close()
	defer vfs.Close()
	grace := c.grace
	if grace <= 0 {
		grace = -1 // no grace at all (FsckOptions' zero means the default)
	}
	r, err := vfs.Fsck(context.Background(), voldfs.FsckOptions{Repair: c.repair, GC: c.gc, Grace: grace, Progress: fsckProgress(stderr)})
	if err != nil {
		fmt.Fprintf(stderr, "voldfs-mount: fsck: %v\n", oneLine(err))
		return 1
	}
	for _, p := range r.Problems {
		fmt.Fprintf(stderr, "%v\n", p)
	}
	fmt.Fprintf(stderr, "voldfs-mount: fsck: %d dirs, %d files, %d symlinks, %d blocks, %d problems, %d repaired, %d garbage blocks%s\n",
		r.Dirs, r.Files, r.Symlinks, r.Blocks, len(r.Problems), r.Repaired, r.GarbageBlocks, map[bool]string{true: " (deleted)", false: ""}[c.gc])
	if !r.OK() && !c.repair {
		return 1
	}
	return 0
}
