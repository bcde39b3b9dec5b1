// Package s3 is a backend.Store on an S3 bucket (AWS S3 or an S3-compatible
// server), through aws-sdk-go-v2. Each key is one object; compare-and-swap
// is a PUT with the conditional headers, so a whole filesystem can live in
// a bucket, or only its blocks, with inodes in etcd or Redis
// (voldfs.Options.Blocks).
//
// # Basics
//
// New takes an *s3.Client the caller configured. Importing the package
// registers the s3: scheme (see Scheme), so backend.OpenURL builds one from
// an s3://BUCKET[/PREFIX]?endpoint=... URL and the AWS_ environment
// variables. Options.Prefix is prepended to every object name.
//
// Get is a GET. CAS from a version is a PUT with If-Match on that
// version's ETag; CAS from NoVersion (create) is a PUT with If-None-Match:
// *. Put, for write-once blocks, is a plain PUT. A 412 Precondition Failed
// (or AWS's 409 ConditionalRequestConflict) is backend.ErrConflict; a 404
// backend.ErrNotFound; a server that reports it is full (507
// InsufficientStorage, QuotaExceeded, MinIO's XMinioStorageFull)
// backend.ErrNoSpace; EntityTooLarge backend.ErrTooLarge. A 5xx, a
// transport error or a lost reply leaves a write's outcome unknown, as the
// backend contract allows: conditional PUTs are sent once, never retried by
// the SDK, since a retry of one that applied would fail its condition and
// be reported as a conflict. Reads and plain PUTs keep the SDK's retries.
// List is ListObjectsV2 by prefix; GetMulti is concurrent GETs (S3 has no
// batch read), at most Options.Parallelism at once.
//
// # Versions
//
// A Version is the first 8 bytes of the SHA-256 of the object's ETag, so
// every client derives the same version from the same object. Every body
// starts with a format byte and a random 8-byte nonce, so two writes of
// the same bytes have different ETags and the same key never gets a
// version back (no ABA), as the contract requires. The Store remembers the
// last ETag it saw for each key (Options.ETagCache), so a CAS after a Get
// sends If-Match at once; a CAS with a version it has not seen costs one
// HEAD first.
//
// # Deletes
//
// S3 answers a DELETE of a missing object with success, so Delete reads
// (HEAD) first, to return ErrNotFound. By default a Delete with a version
// then replaces the value with a tombstone, an 8-byte object, by a PUT with
// If-Match: every change to a key is a conditional PUT, which the servers
// serialise per key. A tombstone reads as missing, List skips it (by its
// size), and a create over one is a PUT with If-Match on the tombstone's
// ETag. Tombstones stay in the bucket: a deleted inode leaves one small
// object. With Options.AtomicDelete (URL: atomic-delete=true) a Delete with
// a version is a DELETE with If-Match instead, which leaves nothing; use it
// only on servers that evaluate that condition atomically with conditional
// PUTs, as AWS S3 does since September 2025. versitygw 1.8.0 does not: its
// DELETE checks If-Match and then unlinks outside the lock its conditional
// PUTs take, and a racing CAS and Delete both succeeded (the CAS's value
// deleted) in 11 rounds of 300. Delete with backend.AnyVersion, which voldfs
// uses only for write-once blocks, is always a plain DELETE.
//
// # Consistency
//
// The server must give strong read-after-write consistency for GET, HEAD
// and LIST (AWS S3 has since December 2020), and support conditional
// writes: If-None-Match: * and If-Match on PutObject (AWS S3 since 2024;
// versitygw, MinIO, Ceph RGW), evaluated atomically with the write. Its
// ETag must change whenever the body changes (an MD5 or a checksum of the
// body does). Every write's condition is the server's to check, so a read
// that races an overwrite can cost a conflict but never a lost update, as
// long as a GET never pairs a body with an ETag newer than it. versitygw
// 1.8.0 reads the ETag before it opens the body, which is safe; its HEAD
// may pair a new ETag with the old size, so the Store never takes a HEAD's
// word that an object is a tombstone (a create over it would overwrite a
// live value): it tells tombstones by GET. A 404 to a HEAD does not say
// whether the key or the bucket is missing; the Store takes it for the key
// (opening by URL checks the bucket).
//
// # Object names
//
// A key's slashes are stored as U+00F7 (÷) and a leading dot as U+00B7
// (·), so object names hold no path separator: servers that keep objects
// as files (versitygw's posix backend, MinIO) cannot hold both "a" and
// "a/b", which are distinct keys. Objects under the prefix whose names the
// Store would not produce are ignored by List. A key of n bytes with s
// slashes has a name of n+s bytes (plus the prefix); a posix-backed server
// limits a name to 255 bytes.
//
// # Caveats
//
// Values are held in memory and limited to Options.MaxValueSize (32 MiB by
// default; S3 takes up to 5 GiB in one PUT, but voldfs's blocks are at
// most 16 MiB). Every write is a full PUT of the value. S3 has no
// multi-object transaction: voldfs builds its multi-key commits on CAS
// with backend/txn when the inodes are in S3. A CAS that the Store cannot
// resolve (an unknown outcome) is the caller's to resolve by reading, as
// voldfs does. Requests cost money on AWS: a Delete is a HEAD and a PUT
// (or DELETE), a conflicting create over a tombstone a PUT, a GET and a
// PUT.
package s3
