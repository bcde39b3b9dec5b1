package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
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
	"github.com/voldfs/voldfs/backend/bolt"
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
	snapshot    string // -snapshot NAME (snapshotmount.go)
	snapshots   bool   // -snapshots: format with voldfs.Options.Snapshots
}

// Exit codes of run.
const (
	exitOK    = 0
	exitFail  = 1 // the store, the mount or the check failed
	exitUsage = 2 // the command line is wrong (flags, arguments, store URL)
)

// synopsis is the short usage, printed after a usage error.
const synopsis = "usage: voldfs-mount [-store URL] [-blocks URL] [-name FS] [-ro] [-snapshot NAME] [-debug] [-lock-timeout D] [-o allow_other] [-metrics ADDR] MOUNTPOINT\n" +
	"       voldfs-mount [-store URL] [-blocks URL] [-name FS] -fsck [-repair] [-gc] [-grace D]\n"

// errUsage is parseFlags' error for a command line it has already
// explained on stderr.
var errUsage = errors.New("usage")

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	var c config
	fl := flag.NewFlagSet("voldfs-mount", flag.ContinueOnError)
	fl.SetOutput(io.Discard) // errors are reported below, -h's usage to stderr
	fl.StringVar(&c.store, "store", "bolt:voldfs.db", storeHelp())
	fl.StringVar(&c.blocks, "blocks", "", "optional separate store `URL` for data blocks (inodes stay in -store); fixed at format time")
	fl.StringVar(&c.name, "name", voldfs.DefaultName, "filesystem `name` in the store")
	fl.BoolVar(&c.readOnly, "ro", false, "mount read-only")
	fl.StringVar(&c.snapshot, "snapshot", "", "mount the snapshot `NAME` (read-only) instead of the live tree")
	fl.BoolVar(&c.snapshots, "snapshots", false, "when formatting: allow snapshots on stores without native multi-key commits (memcache, s3, redis+cluster; every commit then checks the snapshot table)")
	fl.BoolVar(&c.debug, "debug", false, "log every FUSE request")
	fl.StringVar(&c.options, "o", "", "comma-separated mount `options` (allow_other, ...)")
	fl.DurationVar(&c.attrTimeout, "attr-timeout", time.Second, "attribute and entry cache window (0: strict)")
	fl.BoolVar(&c.fsck, "fsck", false, "check the filesystem and exit instead of mounting")
	fl.BoolVar(&c.repair, "repair", false, "with -fsck: fix dangling entries, link counts and orphans")
	fl.BoolVar(&c.gc, "gc", false, "with -fsck: delete unreferenced blocks (stores that list keys: all but memcache)")
	fl.DurationVar(&c.lockTimeout, "lock-timeout", voldfs.DefaultLockTimeout, "how long this mount may be unreachable before other clients break its locks")
	fl.DurationVar(&c.grace, "grace", time.Hour, "with -fsck: leave objects younger than this alone (clients may be using them)")
	addMetricsFlag(fl, &c)
	usage := func(format string, a ...any) (*config, error) {
		fmt.Fprintf(stderr, "voldfs-mount: "+format+"\n%srun voldfs-mount -h for every flag\n", append(a, synopsis)...)
		return nil, errUsage
	}
	if err := fl.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, synopsis)
		fl.SetOutput(stderr)
		fl.PrintDefaults()
		return nil, err
	} else if err != nil {
		return usage("%v", err)
	}
	c.readOnly = c.readOnly || c.snapshot != "" // a snapshot mounts read-only
	fsckOnly := ""
	fl.Visit(func(f *flag.Flag) {
		if f.Name == "repair" || f.Name == "gc" || f.Name == "grace" {
			fsckOnly = f.Name
		}
	})
	switch {
	case c.blocks != "" && c.blocks == c.store:
		return usage("-blocks names the -store itself (%s): give another store, or no -blocks", backend.RedactURL(c.store))
	case c.fsck && fl.NArg() > 0:
		return usage("-fsck checks without mounting: it takes no MOUNTPOINT (got %q)", strings.Join(fl.Args(), " "))
	case c.fsck:
	case fsckOnly != "":
		return usage("-%s goes with -fsck", fsckOnly)
	case fl.NArg() == 0:
		return usage("no MOUNTPOINT given: name the directory to mount the filesystem on (or give -fsck to check it)")
	case fl.NArg() > 1:
		return usage("one MOUNTPOINT wanted, got %d arguments: %s (flags go before the MOUNTPOINT)", fl.NArg(), strings.Join(fl.Args(), " "))
	default:
		c.mountpoint = fl.Arg(0)
	}
	return &c, nil
}

// storeHelp is the -store flag's help: the schemes of the store packages
// stores.go imports, and examples of the usual forms.
func storeHelp() string {
	return "store `URL`, SCHEME:... with a SCHEME of " + strings.Join(backend.Schemes(), ", ") +
		" (bolt:PATH[?sync=interval|always|none], mem:, memcache://HOST:PORT[,...], etcd://HOST:PORT[,...][/PREFIX], ...: see the README's store table)"
}

func run(args []string, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	quietClients(c.debug)
	fail := func(err error) int {
		fmt.Fprintf(stderr, "voldfs-mount: %v\n", oneLine(err))
		if errors.Is(err, backend.ErrBadURL) {
			return exitUsage
		}
		return exitFail
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
	ro := ""
	if c.readOnly {
		ro = " (read-only)"
	}
	fmt.Fprintf(stderr, "voldfs-mount: mounted %s on %s%s\n", describe(c), m.dir, ro)
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
	fmt.Fprintf(stderr, "voldfs-mount: unmounted %s\n", m.dir)
	if err := m.close(); err != nil {
		return fail(err)
	}
	return exitOK
}

// describe names the filesystem c mounts, for the mounted line.
func describe(c *config) string {
	s := fmt.Sprintf("filesystem %q of %s", c.name, backend.RedactURL(c.store))
	if c.blocks != "" {
		s += " (blocks in " + backend.RedactURL(c.blocks) + ")"
	}
	return s
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
// store (and saying so on stderr). The blocks store is opened only once the
// filesystem is known to keep its blocks apart, or is being formatted so;
// a refusal closes what it opened and removes any bolt file it created.
func openFS(c *config, stderr io.Writer) (_ *voldfs.FS, _ backend.Store, err error) {
	var opened []backend.Store
	var created []string
	open := func(url string) (backend.Store, error) {
		path, isNew := newBoltFile(url)
		s, err := openStore(url)
		if err == nil {
			opened = append(opened, s)
			if isNew {
				created = append(created, path)
			}
		}
		return s, err
	}
	defer func() {
		if err == nil {
			return
		}
		for _, s := range opened {
			s.Close()
		}
		for _, p := range created {
			os.Remove(p)
		}
	}()
	inodes, err := open(c.store)
	if err != nil {
		return nil, nil, err
	}
	o := &voldfs.Options{Name: c.name, AttrTimeout: c.attrTimeout, Snapshots: c.snapshots}
	if c.attrTimeout <= 0 {
		o.AttrTimeout = -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	where := fmt.Sprintf("filesystem %q in %s", c.name, backend.RedactURL(c.store))
	openBlocks := func() error {
		blocks, err := open(c.blocks)
		if err != nil {
			return fmt.Errorf("-blocks: %w", err)
		}
		o.Blocks = blocks
		return nil
	}
	vfs, err := voldfs.Open(ctx, inodes, o)
	switch {
	case err == nil && c.blocks != "":
		vfs.Close()
		return nil, nil, fmt.Errorf("%s keeps its blocks with its inodes (it was formatted without -blocks): drop -blocks %s", where, backend.RedactURL(c.blocks))
	case errors.Is(err, voldfs.ErrWrongStore) && c.blocks == "":
		return nil, nil, fmt.Errorf("%s keeps its blocks in a separate store (it was formatted with -blocks): give that store with -blocks URL", where)
	case errors.Is(err, voldfs.ErrWrongStore):
		if err := openBlocks(); err != nil {
			return nil, nil, err
		}
		vfs, err = voldfs.Open(ctx, inodes, o)
		if errors.Is(err, voldfs.ErrWrongStore) {
			return nil, nil, fmt.Errorf("%s: the -blocks store %s holds another filesystem's blocks, or none", where, backend.RedactURL(c.blocks))
		}
	case errors.Is(err, voldfs.ErrNotFormatted) && (c.readOnly || c.fsck):
		return nil, nil, fmt.Errorf("no %s (a mount without -ro formats one)", where)
	case errors.Is(err, voldfs.ErrNotFormatted):
		if c.blocks != "" {
			if err := openBlocks(); err != nil {
				return nil, nil, err
			}
		}
		if vfs, err = voldfs.Format(ctx, inodes, o); err == nil {
			fmt.Fprintf(stderr, "voldfs-mount: formatted a new %s\n", where)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store %q: %w", backend.RedactURL(c.store), err)
	}
	store := inodes
	if o.Blocks != nil {
		store = storePair{inodes, o.Blocks}
	}
	return snapshotView(c, vfs, store) // snapshotmount.go
}

// newBoltFile returns the path of the file a bolt: URL names, and whether
// it is missing (so that opening the store creates it).
func newBoltFile(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != bolt.Scheme {
		return "", false
	}
	path, _, err := bolt.ParseURL(u)
	if err != nil {
		return "", false
	}
	_, err = os.Lstat(path)
	return path, errors.Is(err, fs.ErrNotExist)
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
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mountpoint %s does not exist: create the directory first", dir)
	}
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
	var fresh []string // bolt files this mount creates: a failed one removes them
	for _, u := range []string{c.store, c.blocks} {
		if path, isNew := newBoltFile(u); isNew {
			fresh = append(fresh, path)
		}
	}
	vfs, store, err := openFS(c, stderr)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*mounted, error) {
		vfs.Close()
		store.Close()
		for _, p := range fresh {
			os.Remove(p)
		}
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	root, err := vfs.Inodes().GetAttr(ctx, voldfs.RootIno)
	cancel()
	if err != nil {
		return fail(fmt.Errorf("store %q: %w", backend.RedactURL(c.store), err))
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
	server, err := newServer(raw, c.mountpoint, &opts.MountOptions, stderr)
	if err == nil {
		go server.Serve()
		err = server.WaitMount()
	}
	if err == nil {
		closeOnExecFUSE()
	}
	if err != nil {
		return fail(fmt.Errorf("mount %s: %w", c.mountpoint, err))
	}
	dir, _ := filepath.Abs(c.mountpoint)
	return &mounted{server: server, vfs: vfs, store: store, dir: dir}, nil
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
		if errors.Is(err, backend.ErrBadURL) {
			return exitUsage
		}
		return exitFail
	}
	defer store.Close()
	defer vfs.Close()
	unlisted := unlistable(c, store)
	if c.gc && unlisted != "" {
		fmt.Fprintf(stderr, "voldfs-mount: -gc: store %s cannot list its keys, so no garbage can be found there (its blocks are freed only as commits replace them); run -fsck without -gc\n", unlisted)
		return exitFail
	}
	grace := c.grace
	if grace <= 0 {
		grace = -1 // no grace at all (FsckOptions' zero means the default)
	}
	r, err := vfs.Fsck(context.Background(), voldfs.FsckOptions{Repair: c.repair, GC: c.gc, Grace: grace, Progress: fsckProgress(stderr)})
	if err != nil {
		fmt.Fprintf(stderr, "voldfs-mount: fsck: %v\n", oneLine(err))
		return exitFail
	}
	for _, p := range r.Problems {
		fmt.Fprintf(stderr, "%v\n", p)
	}
	garbage := fmt.Sprintf("%d garbage blocks", r.GarbageBlocks)
	switch {
	case unlisted != "" && !r.Listed:
		garbage = "orphans and garbage not checked (store " + unlisted + " cannot list its keys)"
	case unlisted != "":
		garbage = "garbage not checked (store " + unlisted + " cannot list its keys)"
	case c.gc:
		garbage += " deleted"
	}
	fmt.Fprintf(stderr, "voldfs-mount: fsck: %d dirs, %d files, %d symlinks, %d blocks, %d problems, %d repaired, %s\n",
		r.Dirs, r.Files, r.Symlinks, r.Blocks, len(r.Problems), r.Repaired, garbage)
	if !r.OK() && !c.repair {
		return exitFail
	}
	return exitOK
}

// unlistable returns the URL of the first of c's stores that cannot list
// its keys (so fsck cannot find orphans or garbage there), or "".
func unlistable(c *config, store backend.Store) string {
	inodes, blocks := store, store
	if p, ok := store.(storePair); ok {
		inodes, blocks = p.Store, p.blocks
	}
	if _, ok := inodes.(backend.Lister); !ok {
		return backend.RedactURL(c.store)
	}
	if _, ok := blocks.(backend.Lister); !ok {
		return backend.RedactURL(c.blocks)
	}
	return ""
}
