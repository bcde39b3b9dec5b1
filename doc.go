// Package voldfs is a POSIX-style, copy-on-write filesystem stored in any
// key-value store that offers Get and compare-and-swap (package backend). Many
// processes on many machines can open the same filesystem in the same store at
// once; contended writes resolve by CAS, without locks.
//
// # Basics
//
// Format creates a filesystem in a store under a name (a key prefix); Open
// opens an existing one. *FS implements fs.FS, fs.StatFS, fs.ReadFileFS,
// fs.ReadDirFS, fs.SubFS, fs.GlobFS and fs.ReadLinkFS, and adds the write
// side in the shape of os.Root: Create, OpenFile, Mkdir, MkdirAll, Remove,
// RemoveAll, Rename, Link, Symlink, Readlink, Lstat, Chmod, Chown, Chtimes,
// Truncate, WriteFile. Open returns a *File, or a *Dir for a directory. The
// inode-level API, FS.Inodes (Lookup, Create, Rename, ReadDir, ...), serves a
// FUSE server; examples/voldfs-mount is one.
//
// Every error a caller sees is an *fs.PathError or *os.LinkError wrapping a
// syscall.Errno or an fs.Err* sentinel (or ErrCorrupt, ErrNotFormatted,
// ErrFormatVersion, ErrStale, ErrWrongStore), so errors.Is works and a FUSE
// server can hand the errno to the kernel.
//
// # Objects in the store
//
// Under the filesystem's prefix: a superblock ("super", created once), one
// inode per file, directory, symlink or special file ("i/<ino hex>", mutable,
// changed only by CAS or a multi-key commit), write-once blocks ("b/<ref
// hex>": file data, file index nodes, directory trie nodes, large xattr
// sets), reference counts of blocks reflink copies share ("r/<ref hex>"),
// one lock table per locked inode ("l/<ino hex>"), one session record
// per FS that locks ("s/<id hex>"), and, from older clients only, the rename
// lease ("rename"). On stores without native multi-key commits the inode
// records may hold backend/txn's locks while a commit is in flight. Every
// record has one
// frame, the same for all kinds: a kind, a format version, the payload and a
// CRC-32C; decoders are bounds-checked and fuzzed, and a bad value is an
// error naming its key.
//
// A block ref is 8 bytes of creation time and 8 random bytes, never reused:
// a block belongs to exactly one tree, so the committer that replaces it frees
// it at once (eager GC), and fsck can judge a block's age from its key alone.
// Reflink copies (FS.Clone, File.CloneFrom, File.CloneRange) are the
// exception: their files are marked shared, and a block of theirs with more
// than one parent has a reference count, changed in the same commit as the
// inode whose edit changes it, that decides when it is freed (Rodeh's
// "B-trees, shadowing and clones": a clone counts 2 for the shared root; the
// first edit under a shared node copies it and counts one more reference
// for each of its children).
// Small files (up to 4 KiB), small directories and symlink targets live inline
// in their inode. Larger files are a radix tree of sparse index nodes over data
// blocks (a hole is an absent entry, never a missing block). Directories are a
// hash trie ordered by a 64-bit name hash, which is also the readdir cookie.
//
// Three mechanisms differ from the plain shape of such a design (and from
// the VoldFS ancestor) while keeping its invariants:
//
//   - A directory's root, inline in its inode (up to 4 KiB), carries a small
//     write buffer of pending inserts and removes (LSM-style), merged into the
//     trie in one pass when it fills. Creating or removing a name in a large
//     directory therefore usually writes no trie block: the parent's one CAS
//     publishes it, and a create costs three store round trips (new inode,
//     parent, the file's first commit). Lookups and listings read the buffer
//     before the trie.
//   - Blocks replaced by a commit are deleted in the background after its CAS
//     wins (FS.WaitFrees waits for them), and a complete new data block is
//     uploaded while the writer goes on (write-behind); the commit that makes
//     it reachable is still one inode CAS.
//   - Inode numbers are random 63-bit numbers made unique by the inode's
//     create-only CAS, so no counter key is contended.
//
// # Consistency
//
// One inode is changed by one CAS: an operation on one inode (a write
// commit, a truncate, a chmod, adding or removing one directory entry, a
// rename within one directory) is atomic and linearizable. On a conflict the
// operation is applied again to the newer inode (rebase), reusing the data
// blocks it already wrote; O_APPEND offsets are resolved at commit time
// against the latest size, so appenders on different machines never overwrite
// each other. Partial-block writes record the byte ranges they wrote, so two
// clients writing different bytes of one block both survive.
//
// Close-to-open, like NFS: Open and Inodes.Open always fetch the current inode,
// and a File's writes are published by Sync, Close, Truncate, or when its
// write-back buffer (Options.WriteBuffer) fills. Within one FS the open
// Files of an inode share one write-back state, like a kernel page cache: a
// read through any of them, Stat, ReadDir and the inode API see every write
// made through any other at once. Stat and path lookups may
// answer from an inode cached for up to Options.AttrTimeout (default 1 s;
// negative for strict). A File revalidates its inode after the same window, so
// a long-open reader sees other clients' commits within it.
//
// Namespace changes are single atomic multi-key commits (backend.Committer;
// a store without one is wrapped with package backend/txn when opened):
// creating a file writes its inode (create-only) and the parent's entry
// together; link, unlink and rmdir change the entry and the link count (or
// the dead mark) together; a rename or exchange changes both directories,
// a moved directory's "..", a replaced target and the subdirectory counts
// together. A directory move also checks, in the same commit, the version of
// every ancestor of the destination it walked to rule out a cycle, so a
// concurrent move of any of them conflicts and the move is judged again.
// Renames need no lock and run concurrently. A commit whose reply is lost is
// resolved by reading the store, never undone. An intent left under the
// rename lease key ("rename") by an older client that crashed is rolled
// forward by Open and Fsck once it is ten seconds old.
//
// # Concurrency
//
// FS, File and Dir are safe for concurrent use by many goroutines. Many FS
// values (in one process or on many machines) may share one store. Every
// operation can be bounded: FS.WithContext returns a view whose operations
// (and those of files it opens) use a context, and Options.OpTimeout bounds
// each one.
//
// # Caching
//
// Blocks are immutable, so a byte-bounded LRU (Options.CacheSize) caches them
// with no invalidation; index nodes are cached decoded. Concurrent misses of
// one key share one store read (singleflight). A read spanning several blocks
// fetches them in parallel (Options.Parallelism) and sequential reads trigger
// readahead; a commit uploads its blocks in parallel.
//
// # Caveats
//
//   - No permission checks: the library trusts its caller, like a process
//     running as root. The FUSE example lets the kernel check permissions
//     (default_permissions).
//   - atime is not updated by reads (as with the noatime mount option); it
//     changes only through Chtimes or SetAttr.
//   - An unlinked file that is still open in this process keeps its data
//     until its last Close; one open in another process loses its data when
//     the last link goes (reads then fail with ErrStale), as on NFS.
//   - Cross-directory renames of one filesystem are serialised (one at a
//     time across all clients); same-directory renames are not.
//   - Two names in one directory whose 64-bit hashes collide cannot coexist:
//     the second is refused with ENOSPC (about n²/2⁶⁵ for n names).
//   - An inode number is a random 63-bit number drawn at create, unique by a
//     create-only CAS.
//   - Orphan and garbage collection (Fsck with GC) needs a store that can list
//     keys; on memcached eager freeing is the only GC.
//   - A Sub view is a chroot: ".." and absolute symlinks stop at (resolve
//     from) its root, so an absolute symlink may name different files through
//     a Sub and through its parent.
//   - Invalid arguments to Seek, Rename (a directory into itself) and the
//     inode-level API are syscall.EINVAL, which errors.Is does not match with
//     fs.ErrInvalid; invalid paths are fs.ErrInvalid.
//   - A write to a file another client removed fails at commit with ENOENT
//     (or ErrStale on read).
//   - Clients of earlier versions do not know reference counts: once a
//     filesystem holds reflink copies, every client must be of this version
//     or later (an older one would free shared blocks).
//   - The first write into a shared index node commits one count change for
//     each of its children (up to 2^14 with 512 KiB blocks): on etcd, whose
//     transactions take 128 ops by default, such a commit fails (EFBIG)
//     unless --max-txn-ops is raised (and the store told, with
//     etcd.WithMaxTxnOps); the txn fallback (memcached) locks
//     each counted key. Removing or truncating a file that was ever cloned
//     reads the count of every block it drops (in parallel).
//   - Directory trie blocks are stored as one record. Earlier versions
//     framed them twice; this version still reads such blocks, but those
//     versions cannot read the blocks it writes: upgrade every client of a
//     filesystem together.
package voldfs
