// Package bolt is a backend.Store in one bbolt (go.etcd.io/bbolt) file: an
// embedded, durable store for a single process.
//
// # Basics
//
// All keys live in one bucket. Each value is stored behind an 8-byte
// big-endian version. The Store implements every optional interface but
// SizeLimiter: BatchGetter, Lister, Putter, Committer (multi-key commits in
// one step) and Syncer.
//
// # Durability
//
// By default the Store commits in groups, as a local filesystem's journal
// does: a write (CAS, Put, Delete, Commit) is acknowledged once it is applied
// to the Store's memory, and a flusher writes everything acknowledged so far
// to the file in one bbolt transaction (one fsync) at most Options.Interval
// (20 ms by default) after the first write of a batch, or at once when Sync
// asks. Batches are written in order and each is atomic, so after a crash of
// the process or of the machine the file holds a prefix of the acknowledged
// history: everything acknowledged before the last Sync that returned, and
// perhaps some later writes, never a later write without an earlier one. A
// crash loses at most the writes of the last interval (plus the flush in
// progress). Sync returns once every write acknowledged before it is in the
// file; Close flushes.
//
// Options.Durability = SyncAlways acknowledges a write only once its batch is
// in the file (an fsync per commit, shared by writers that commit at the same
// time). Other readers of the Store may see the write a moment earlier, while
// its batch is being written.
//
// If writing a batch fails, the Store refuses every later write and Sync
// returns the error: it never acknowledges writes on top of a lost prefix.
// Reads still answer from memory and the file. When the batch failed
// because the disk is full (ENOSPC), the later writes are refused with
// backend.ErrNoSpace (voldfs: ENOSPC), except deletes, which are taken; a
// refused write has the failed batch tried again (with the deletes merged
// in, in one transaction, at most every 100 ms), and once it fits the
// Store takes writes again, without a reopen.
//
// Pending writes are bounded (Options.MaxPending bytes): a writer that would
// pass the bound waits for the flusher, so a slow disk slows writers down
// instead of growing memory without limit.
//
// # Versions
//
// Versions come from one counter shared by all keys, so they only grow,
// across deletes and re-creates. The file records a ceiling: every version
// handed out is at most the ceiling, and the ceiling is written to the file
// (and synced) before a version above the old one is handed out, in blocks
// of a million. On Open the counter starts above the ceiling, so a version
// handed out for a write that a crash then lost is never handed out again: a
// client holding it gets ErrConflict, never an ABA match with a different
// value. A crash wastes at most one block of versions.
//
// # Caveats
//
// bbolt locks the file: one process at a time opens it (Options.Timeout bounds
// the wait). Group commit acknowledges writes that a machine crash can lose:
// call Sync where that matters, or use SyncAlways. NoSync skips fsync
// altogether (a machine crash can lose or corrupt the file; for tests and
// benchmarks). Contexts are checked before each call and while it waits for
// the flusher; a bbolt transaction in progress is not interrupted.
package bolt
