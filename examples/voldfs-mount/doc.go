// Command voldfs-mount mounts a voldfs filesystem with FUSE.
//
//	voldfs-mount [-store URL] [-name FS] [-ro] [-debug] [-o OPTIONS] MOUNTPOINT
//	voldfs-mount [-store URL] [-name FS] -fsck
//
// The store URL is bolt:PATH (an embedded single-process store; the default
// is bolt:voldfs.db), mem: (in memory, gone at unmount), or
// memcache://HOST:PORT[,HOST:PORT...]. A store without a filesystem of that
// name is formatted first. The program runs in the foreground and unmounts on
// SIGINT or SIGTERM. -o takes a comma-separated list of mount options;
// allow_other lets other users in (it needs user_allow_other in
// /etc/fuse.conf when not run as root). The kernel always checks
// permissions itself (default_permissions): voldfs stores modes and owners
// but does not enforce them.
//
// The program is thin: every filesystem behaviour comes from package voldfs
// through its inode-level API; this package translates FUSE requests and
// library errors (to errno values; anything unknown or corrupt is EIO).
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
//   - Open always fetches the current inode from the store, and files are
//     opened without FOPEN_KEEP_CACHE, so the kernel drops its page cache on
//     every open: a reader that opens after a writer closed sees the
//     writer's data.
//   - Writes are buffered in the library's open file and committed (one
//     inode CAS) on close (FUSE flush), fsync, or when the buffer fills. A
//     stat of a file with buffered writes in this mount commits them first,
//     as the NFS client does, so sizes and times are right.
//   - The kernel's writeback cache is off: every write reaches the library
//     at once, in requests of up to 1 MiB.
//
// # Caveats
//
// New files, directories and symlinks belong to the calling process's uid
// and gid from the commit that creates them. Extended attributes,
// device nodes, FIFOs and sockets are not supported (ENOTSUP), nor is
// RENAME_WHITEOUT (EINVAL). Locks are local to this mount.
package main
