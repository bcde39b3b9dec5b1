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
// # Snapshots
//
// FS.Snapshot takes a named, read-only snapshot of the whole filesystem in
// two store round trips whatever its size; FS.OpenSnapshot returns it as a
// read-only *FS (every read call works, every write fails with EROFS);
// FS.Snapshots lists them and FS.DeleteSnapshot drops one. The design is
// bcachefs/CephFS-style snapshot ids with ZFS-style birth ids for blocks:
//
//   - The snapshot table ("snaps", absent until the first snapshot) holds
//     the filesystem's epoch E and the live snapshots. Taking a snapshot is
//     one CAS of the table: the snapshot gets id E and the epoch becomes
//     E+1. Snapshot s holds exactly the inode records written under an
//     epoch <= s.
//   - Every inode record carries the epoch it was written under (its stamp,
//     an optional trailer field; records of a filesystem that never had a
//     snapshot have none and are byte-identical to earlier versions) and a
//     pointer to its predecessor's preserved copy.
//   - The first change to an inode after a snapshot that needs its record
//     (a live snapshot s with stamp <= s < E) preserves the old record under
//     "v/<ino hex>/<stamp hex>" in the same commit as the change (one extra
//     put in the same round trip), and the new record points to it. Later
//     changes in the same epoch preserve nothing. An inode deleted while a
//     snapshot needs its chain leaves its last record under "v/<ino hex>/-"
//     (one extra put) so the chain stays reachable.
//   - A snapshot reader resolves inode ino by reading the live record and
//     following the pointers until a record stamped <= s (or none: the
//     inode did not exist then). Snapshot records never change, so a
//     snapshot view caches them with no revalidation: after warm-up it reads
//     no more than the live tree (less: it never revalidates).
//   - The fence: every commit carries a Check op on the table's version
//     (backend.Commit), so a writer that has not seen a new snapshot fails
//     its commit, reads the table and rebases: no commit lands in an epoch a
//     snapshot already froze, and every snapshot is a consistent cut (the
//     commits linearized before the table's CAS). On stores with a native
//     Committer the single-inode CAS becomes a one-round-trip Commit of the
//     inode and the check, always (also before the first snapshot, whose
//     table is checked absent): no extra round trip and no client left
//     unfenced. On stores wrapped by backend/txn a check is a lock in a
//     Percolator commit, so whether a filesystem is fenced there is decided
//     once, at Format, and recorded in its superblock (Options.Snapshots):
//     every client reads it at Open, so none is ever unfenced, not even one
//     that opened before the first snapshot and has not read the table since
//     (its check names the absent table, which the snapshot's CAS creates).
//     Each of their writes is then a small multi-key commit (see Caveats). A
//     filesystem formatted without the option keeps plain CASes and refuses
//     its first snapshot there (ENOTSUP): a client that learned of the table
//     only later could commit into it. (One whose table an earlier version
//     wrote is fenced from its first commit on.)
//   - Blocks: a block ref written while the epoch is E > 0 carries E as its
//     birth id (in the low bits of its time field, with the top bit set); an
//     older ref has birth 0. A block a commit frees is deleted only if no
//     live snapshot s >= its birth exists; otherwise a snapshot holds it and
//     it stays. This is the ZFS birth-time rule on epochs, not clocks, so
//     clock skew cannot lose a snapshot's block.
//
// Writable clones (FS.CloneSnapshot, snapshotclone.go): a clone is a filesystem of
// its own name in the same store whose superblock names its origin (a
// filesystem and one of its snapshots); creating one writes three keys. An
// inode the clone never wrote is read from the origin's snapshot (an
// absent key falls through), so its first write is a create-only CAS of
// the clone's key, and a deletion leaves a tombstone. A block ref born at
// or before the snapshot is the origin's: read under the origin's prefix
// and never freed by the clone, whose epochs start after the snapshot, so
// every block it writes is born later and lives under its own prefix. Each
// side's Fsck and GC list only their own keys. The snapshot is pinned
// while clones exist (DeleteSnapshot: EBUSY). Clones of clones work the
// same way, one origin hop per level.
//
// Fsck walks every snapshot: it keeps their blocks out of GC, reports what
// each holds and what only it holds (FsckReport.Snapshots), and with GC, on
// stores that list keys, deletes the tail of each inode's chain of
// preserved records that no live snapshot needs.
//
// Deleting a snapshot (snapshotdelete.go) removes it from the table, then
// frees what only it held, on any store, without listing: it walks the
// snapshot's namespace once and, for each inode whose record there differs
// from the next holder's (the next live snapshot, or the live tree),
// deletes the blocks born after the previous live snapshot (so no older
// snapshot holds them) that the next record does not reference, and the
// preserved records no live snapshot needs. That costs reads in proportion
// to the snapshot's inodes (mostly cached), not a scan of the store. A
// crash in the middle leaves the rest to Fsck's GC. ZFS-style deadlists
// (a commit that keeps a held block records it in the newest holder's
// deadlist, sharded by inode) would make deletion proportional to what
// changed instead; they are not built. Subtree snapshots are not built
// (the epoch is per filesystem), nor is deleting a clone.
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
//   - Snapshots on stores without native multi-key commits (memcached, a
//     user's store through backend/txn) need Options.Snapshots at Format,
//     and then every write of every client, snapshot or not, is a
//     multi-key commit that locks the one table key: about twice the store
//     requests, and writers of the filesystem serialise on that key.
//     Sharding the fence (a commit locks only its inodes' shards; a
//     snapshot bumps every shard in one commit) is not built. A filesystem
//     snapshotted there by an earlier version, which fenced a client only
//     once it had seen the table, may hold commits of clients that opened
//     before its first snapshot (Fsck reports the blocks they freed, not
//     the records they changed in it). Earlier versions
//     refuse a superblock with the option (ErrCorrupt).
//   - Deleting a snapshot reads every inode it holds (to free what only it
//     held); a crash in the middle leaves the rest to Fsck with GC (stores
//     that list keys). At most 1000 live snapshots; the table is one value
//     read by every client after each change.
//   - A clone draws new inode numbers at random like any filesystem; one
//     that equals a number of the origin's snapshot (about n/2⁶³ per
//     create) would shadow that inode in the clone.
//   - Snapshots hold what was committed: data still in open files'
//     write-back buffers is not in them.
//   - Inode records written after a filesystem's first snapshot, and clones'
//     superblocks, carry fields earlier versions refuse (ErrCorrupt):
//     upgrade every client before taking the first snapshot.
//   - Directory trie blocks are stored as one record. Earlier versions
//     framed them twice; this version still reads such blocks, but those
//     versions cannot read the blocks it writes: upgrade every client of a
//     filesystem together.
package voldfs
