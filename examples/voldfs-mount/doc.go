// Command voldfs-mount mounts a voldfs filesystem with FUSE.
//
//	voldfs-mount [-store URL] [-blocks URL] [-name FS] [-ro] [-debug] [-o OPTIONS] [-metrics ADDR] MOUNTPOINT
//	voldfs-mount [-store URL] [-blocks URL] [-name FS] -fsck [-repair] [-gc]
//
// The store URL is any scheme of the store packages stores.go imports (see
// backend.OpenURL and each package's Scheme): bolt:PATH (an embedded
// single-process store; the default is bolt:voldfs.db; bolt:///ABS/PATH is
// an absolute path, bolt://NAME an error), mem: (in memory, gone at
// unmount), memcache://HOST:PORT[,HOST:PORT...],
// etcd://HOST:PORT[,HOST:PORT...][/PREFIX], redis://HOST:PORT[/DB] or
// redis+cluster://HOST:PORT[,HOST:PORT...]; options are query parameters
// (bolt:voldfs.db?sync=always). -blocks names a second store for the data
// blocks, fixed when the filesystem is formatted. A store without a
// filesystem of that name is formatted first (unless -ro or -fsck). The
// program runs in the foreground and unmounts on SIGINT or SIGTERM. -o
// takes a comma-separated list of mount options; allow_other lets other
// users in (it needs user_allow_other in /etc/fuse.conf when not run as
// root). The kernel always checks permissions itself (default_permissions):
// voldfs stores modes and owners but does not enforce them.
//
// # Messages
//
// Everything the program says goes to stderr, one line each: that it
// formatted a new filesystem, that it mounted it (the filesystem, its store
// and the mountpoint), that it unmounted it, or what went wrong. The exit
// status is 0 after a clean unmount (or a clean -fsck), 1 when the store,
// the mount or the check failed, and 2 when the command line is wrong: a
// flag, a missing or extra argument, a store URL (a usage error adds the
// synopsis). A mount the kernel refuses reports fusermount3's own message
// and its exit status. Store pairings are checked before the blocks store
// is opened: -blocks on a filesystem formatted without it, or none on one
// formatted with it, is refused in plain words, and a refusal removes any
// bolt file the run created. -fsck -gc refuses a store that cannot list its
// keys (memcached), and -fsck says when orphans and garbage could not be
// looked for.
//
// The program is thin: every filesystem behaviour comes from package voldfs
// through its inode-level API; this package translates FUSE requests and
// library errors (to errno values; anything unknown or corrupt is EIO).
//
// # Metrics
//
// -metrics ADDR (such as 127.0.0.1:9100) serves the library's counters
// (voldfs.Stats: calls by kind, store requests by kind and store, conflicts,
// retries, cache hits, bytes, background work in flight) over HTTP, with no
// authentication: Prometheus text at /metrics and expvar JSON at
// /debug/vars. SIGUSR1 prints a one-line summary of the counters, and the
// unmount prints one for the whole run. A long -fsck prints a progress line
// at most once a second.
//
// # Consistency and caching
//
// voldfs gives close-to-open consistency with a short attribute window, as
// NFS does, and the kernel is configured to match:
//
//   - Entry and attribute timeouts equal the library's attribute window
//     (Options.AttrTimeout, default 1 s, -attr-timeout here): a name or
//     attribute changed by another client shows within that window.
//     Failed lookups are not cached (negative timeout 0), so a file created
//     elsewhere is visible at once.
//   - Open always fetches the current inode from the store. Its change
//     attribute (ctime: every commit to the inode sets it, in nanoseconds)
//     decides what the kernel may keep: unchanged since the file's last
//     open in this mount, the kernel keeps its cached pages
//     (FOPEN_KEEP_CACHE), so re-reading an unchanged file costs no request;
//     changed (by this mount or another client), the kernel drops its
//     pages, writing dirty mmap pages back through this mount first, and
//     the cached attributes too (inode notify), so a reader that opens
//     after a writer closed sees the writer's data, with its size, even
//     when size and mtime did not change.
//   - Taking a lock (flock, fcntl) revalidates the same way: if the file
//     changed since the kernel cached it, its pages and attributes are
//     dropped, so a program that reads under a lock (SQLite) sees what the
//     last holder wrote through another mount. Releasing a lock commits the
//     file's buffered writes first.
//   - An open of a name whose file another client removed answers ESTALE,
//     so the kernel looks the name up again (an O_CREAT open then creates
//     it) instead of failing on a name it still has cached.
//   - Writes are buffered in the library, in one state for all the open
//     files of an inode in this mount (so a read through any descriptor, of
//     any process, sees every write at once, and stat sees their size), and
//     committed (one inode CAS) on close (FUSE flush), fsync (which also
//     waits for the store's durability), or when the buffer fills. O_SYNC
//     and O_DSYNC writes are durable when they return.
//   - FUSE interrupts do not cancel requests: Go programs get signals all
//     the time (SIGURG, for preemption), and an interrupted rename would
//     fail with EINTR. As on an NFS hard mount, requests run to the end.
//     The exception is a waiting lock (F_SETLKW, blocking flock): a signal
//     ends the wait with EINTR, which the kernel restarts for handlers
//     with SA_RESTART (so flock -w and alarm(2) time out as usual).
//   - Locks (flock(2), fcntl POSIX and OFD record locks) are the library's,
//     held in the store: two mounts, on one machine or two, exclude each
//     other. A mount that stops (killed, or cut off from the store) has its
//     locks broken after -lock-timeout (default 30 s). See locks.go for how
//     the kernel's lock owners map.
//   - Extended attributes (user., trusted., security.; no POSIX ACLs),
//     FIFOs, sockets and device nodes are the library's; the kernel serves
//     a FIFO's data and a socket's connections.
//   - fallocate(2) (mode 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE;
//     others are EOPNOTSUPP) and lseek(2)'s SEEK_DATA and SEEK_HOLE are the
//     library's; holes are whole blocks. No space is reserved.
//   - statfs(2) (df) reports the used blocks and inodes the library counts
//     in the store (0 for a store that cannot list its keys), reused for
//     2 s; the free figures are nominal (1 PiB, 2^32 inodes).
//
// The kernel's writeback cache (writeback_cache) stays off, and cannot be
// correct here: with it the kernel holds the authority on a cached file's
// size and mtime and ignores the size the filesystem reports, so a file
// another client grew reads truncated, and it resolves O_APPEND offsets
// itself. Measured with it on (TestTwoMountsRewrite, TestKeepCache,
// TestPOSIX): 200 of 200 "rewrite longer in one mount, read in another"
// rounds read truncated, 50 of 50 same-size rewrites read wrong, and an
// append through a second hard link was lost. Every write reaches the
// library at once, in requests of up to 1 MiB.
//
// # Caveats
//
// New files, directories and symlinks belong to the calling process's uid
// and gid from the commit that creates them. RENAME_WHITEOUT is EINVAL. A
// lock held through another mount is reported by F_GETLK with pid 0, and an
// OFD lock as a POSIX one (the kernel sends both alike).
package main
