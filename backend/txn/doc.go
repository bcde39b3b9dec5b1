// Package txn adds atomic multi-key commits (backend.Committer) to a store
// that offers only per-key CAS, such as memcached or a user's store, in the
// manner of Percolator (Peng & Dabek, OSDI 2010) and the multi-word CAS of
// Harris, Fraser and Pratt (2002). Wrap returns the wrapped store; every
// client of the keys must use it.
//
// # Protocol
//
// A Commit of two or more ops runs these steps; each is one store call, and
// each is idempotent (an unknown outcome is resolved by reading):
//
//  1. Read every op's key (one batch). A key that plainly fails its
//     condition ends the commit with a *backend.ConflictError, having
//     written nothing.
//  2. Lock each key, in key order: a CAS from the version read to a lock
//     that holds the key's pre-image (value and logical version, or
//     absence) and the op (new value, delete or check). The lock of the
//     first key, the primary, is the transaction record: it holds the state,
//     pending, and the list of keys; every other lock names the primary and
//     the transaction's random id (as in Percolator, this saves a record
//     key, and a crash can leave nothing that no reader of the keys finds).
//     A key that fails its condition aborts the transaction and ends the
//     commit with a ConflictError.
//  3. Commit: one CAS of the primary lock from pending to committed, the
//     single commit point. If another client aborted the transaction first,
//     this CAS fails, nothing applies, and Commit starts over.
//  4. Release: replace each other lock by the new value (delete it for a
//     delete, restore the pre-image for a check), then the primary. The
//     primary is released last, so a lock whose primary no longer holds its
//     transaction belongs to an aborted one (a lock can appear after its
//     primary is released only from an attempt that never commits). Commit
//     returns once step 3 is known to have applied: failures in step 4 only
//     leave work for others.
//
// A single op is done directly: a CAS, a conditional delete, or a read.
//
// # Resolving locks
//
// A client that meets a lock reads its primary: committed, the key holds
// the op's result; aborted or released, the key holds its pre-image;
// pending, the key holds its pre-image until the commit. Reads return that
// value without writing. A writer (CAS, Delete, Commit) whose condition
// holds on the key replaces a finished lock directly with its own write
// (releasing every other lock first if it is a committed primary), and
// waits for a pending one; a writer whose condition fails gets ErrConflict
// at once. A transaction that has stayed pending for the timeout
// (WithTimeout), counted on the client's own clock from when it first met
// it, looks abandoned: the client aborts it with a CAS of its primary from
// pending to aborted and releases its locks. A slow but live owner then
// fails its commit CAS, so correctness never depends on clocks; the timeout
// only decides when to help. Finished transactions still locked after the
// timeout are released by whoever meets them.
//
// Keys are locked in order, so live transactions never wait for each other
// in a cycle.
//
// # Encoding
//
// Values the wrapper stores in its own forms start with the byte 0xC1,
// which starts no valid UTF-8 text and no voldfs record (voldfs frames
// every record with an ASCII kind letter), so a store written without the
// wrapper reads unchanged through it. The forms are 0xC1 'E' and a plain
// value that itself starts with 0xC1 (escaped); 0xC1 'V', a version and a
// value (a value that keeps an earlier logical version, see below); and
// 0xC1 'L', a lock.
//
// # Versions
//
// The versions a caller sees are logical: a plain value's version is the
// store's; a locked key shows its pre-image's version until the commit and,
// after it, the lock's own store version (the primary: the version it had
// while pending, since a CAS with its current one would release it before
// the other locks). Releasing a lock writes the value in the 'V' form, which
// keeps that logical version, so an aborted transaction, a check, or a
// release by another client changes no version a caller holds: a CAS with
// it succeeds (through one extra read and CAS). Logical versions are
// versions the store gave the same key, so they are never reused (no ABA).
//
// # Caveats
//
// Every client of the keys must go through Wrap: a plain client would read
// locks as values and could overwrite them. Put with a wrapped store's
// Putter overwrites blindly, as its contract allows for write-once keys:
// never Put a key a transaction may touch. A value written without the
// wrapper that starts with 0xC1 is misread. A store that loses keys
// (memcached without -M) can lose a lock, and with it a committed value.
//
// A lock holds the key's old and new values together, so through Commit a
// value and the key's current value must fit in the store's limit together
// (less about 300 bytes, and for the primary the list of keys); a larger one
// is backend.ErrTooLarge, and nothing applies. Plain CAS and Put accept
// values up to MaxValueSize.
//
// A commit of n ops costs 2n+2 store calls (n+4 in sequence: locking is
// sequential, releasing parallel); a conflicted or aborted attempt costs its
// rollback. Readers that meet a lock pay one more read (the primary). The
// first CAS or Delete of a key after another client released it, or after
// an abort or a check (the 'V' form), costs one read and one more call.
// Delete with backend.AnyVersion reads the key before deleting it.
//
// Any call that meets a transaction pending for longer than the timeout
// aborts it, reads included: a timeout shorter than a commit takes makes
// clients abort each other (they retry, so this costs time, not
// correctness).
//
// When Commit's release of a key fails with an unknown outcome, the version
// it returns for that key may be stale: a CAS with it conflicts, and the
// caller reads again.
//
// List lists keys that an unfinished transaction is creating or deleting.
// A client that crashes in the middle of a commit leaves locks until another
// client meets them and the timeout has passed.
package txn
