package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/voldfs/voldfs/backend"
)

// DefaultMaxValueSize is the default value limit: room for voldfs's largest
// block size (16 MiB) with its framing, and for a multi-key commit's lock,
// which holds a key's old and new values together. S3 itself takes up to
// 5 GiB in one PUT, but the Store holds each value in memory.
const DefaultMaxValueSize = 32 << 20

// DefaultParallelism bounds the concurrent GETs of one GetMulti.
const DefaultParallelism = 16

// DefaultETagCache is the default number of keys whose last ETag a Store
// remembers (see Options.ETagCache).
const DefaultETagCache = 1 << 16

// Options configures New. Zero fields take the defaults.
type Options struct {
	// Prefix is prepended to every object name, as it is: "voldfs/" keeps
	// the store's objects in a folder of the bucket.
	Prefix string
	// MaxValueSize is the largest value accepted (default
	// DefaultMaxValueSize).
	MaxValueSize int
	// Parallelism bounds the concurrent GETs of one GetMulti (default
	// DefaultParallelism).
	Parallelism int
	// ETagCache is the number of keys whose last seen ETag the Store keeps,
	// so that a CAS after a Get needs no HEAD first (default
	// DefaultETagCache; negative: none).
	ETagCache int
	// AtomicDelete says that the server evaluates a DELETE's If-Match
	// atomically with conditional PUTs, as AWS S3 does (since September
	// 2025): Delete with a version then sends a conditional DELETE. Without
	// it, Delete replaces the value with a tombstone by a conditional PUT,
	// and the object stays (see the package comment).
	AtomicDelete bool
}

// Store is a backend.Store on an S3 bucket. It is safe for concurrent use.
type Store struct {
	c            *s3.Client
	bucket       string
	prefix       string
	limit        int
	par          int
	etags        *etagCache
	atomicDelete bool
	closed       atomic.Bool
	onClose      func()
}

var (
	_ backend.Store       = (*Store)(nil)
	_ backend.BatchGetter = (*Store)(nil)
	_ backend.Lister      = (*Store)(nil)
	_ backend.Putter      = (*Store)(nil)
	_ backend.SizeLimiter = (*Store)(nil)
)

// New returns a Store on bucket through client, which the caller builds
// with the endpoint, region and credentials it needs (for example with
// config.LoadDefaultConfig of aws-sdk-go-v2/config). It sends no request.
func New(client *s3.Client, bucket string, opts Options) *Store {
	s := &Store{
		c:            client,
		bucket:       bucket,
		prefix:       opts.Prefix,
		limit:        opts.MaxValueSize,
		par:          opts.Parallelism,
		atomicDelete: opts.AtomicDelete,
	}
	if s.limit <= 0 {
		s.limit = DefaultMaxValueSize
	}
	if s.par <= 0 {
		s.par = DefaultParallelism
	}
	n := opts.ETagCache
	if n == 0 {
		n = DefaultETagCache
	}
	s.etags = newETagCache(n)
	return s
}

// MaxValueSize returns the largest value the Store accepts.
func (s *Store) MaxValueSize() int { return s.limit }

// Close marks the Store closed: later calls return backend.ErrClosed. It
// does not close the client's connections unless OpenURL built the client.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.onClose != nil {
		s.onClose()
	}
	return nil
}

// check returns what every call checks before its request.
func (s *Store) check(ctx context.Context, key string) error {
	if s.closed.Load() {
		return backend.ErrClosed
	}
	return backend.CheckKey(ctx, key)
}

func (s *Store) object(key string) *string { return aws.String(s.prefix + objectName(key)) }

// noRetry makes a conditional PUT a single attempt: the SDK's retry of one
// that applied but whose reply was lost would fail its condition, and the
// Store would then report a conflict for a write that took effect.
func noRetry(o *s3.Options) { o.Retryer = aws.NopRetryer{} }

// Get returns key's value and version.
func (s *Store) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, backend.NoVersion, err
	}
	value, etag, tomb, err := s.get(ctx, key)
	if err != nil {
		return nil, backend.NoVersion, err
	}
	if tomb {
		return nil, backend.NoVersion, fmt.Errorf("s3: get %q: %w", key, backend.ErrNotFound)
	}
	return value, versionOf(etag), nil
}

// get GETs key's object: its value, or tomb set for a tombstone, and its
// ETag (cached). A missing object is ErrNotFound.
func (s *Store) get(ctx context.Context, key string) (value []byte, etag string, tomb bool, err error) {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: s.object(key)})
	if err != nil {
		err = storeError(ctx, "get", key, err)
		if errors.Is(err, backend.ErrNotFound) {
			s.etags.forget(key)
		}
		return nil, "", false, err
	}
	defer out.Body.Close()
	// Read at most one byte more than the largest body this Store writes,
	// so a foreign object cannot make it allocate without bound.
	body, err := io.ReadAll(io.LimitReader(out.Body, int64(headerLen+s.limit+1)))
	if err != nil {
		return nil, "", false, storeError(ctx, "get", key, err)
	}
	if len(body) > headerLen+s.limit {
		return nil, "", false, fmt.Errorf("s3: get %q: object over %d bytes: %w", key, headerLen+s.limit, errCorrupt)
	}
	value, tomb, err = decodeBody(body)
	if err != nil {
		return nil, "", false, fmt.Errorf("s3: get %q: %w", key, err)
	}
	etag = aws.ToString(out.ETag)
	if etag == "" {
		return nil, "", false, fmt.Errorf("s3: get %q: the server sent no ETag", key)
	}
	s.etags.put(key, etag, tomb)
	return value, etag, tomb, nil
}

// GetMulti fetches keys with concurrent GETs (S3 has no batch read).
// Missing keys are absent from the result.
func (s *Store) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	if s.closed.Load() {
		return nil, backend.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var (
		mu       sync.Mutex
		out      = make(map[string]backend.Item, len(keys))
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, s.par)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			v, ver, err := s.Get(ctx, k)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, backend.ErrNotFound):
			case err != nil:
				if firstErr == nil {
					firstErr = err
					cancel()
				}
			default:
				out[k] = backend.Item{Value: v, Version: ver}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// CAS stores value under key if the key is at version old: a PUT with
// If-Match on the ETag of old, or, for NoVersion, a create (see create).
func (s *Store) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	if err := s.check(ctx, key); err != nil {
		return backend.NoVersion, err
	}
	if err := backend.CheckValue(value, s.limit); err != nil {
		return backend.NoVersion, err
	}
	if old == backend.NoVersion {
		return s.create(ctx, key, value)
	}
	etag, err := s.etagOf(ctx, "cas", key, old)
	if err != nil {
		return backend.NoVersion, err
	}
	v, err := s.putIf(ctx, key, etag, encodeBody(value))
	if errors.Is(err, backend.ErrNotFound) {
		// If-Match on a missing object: the key is not at old.
		return backend.NoVersion, fmt.Errorf("s3: cas %q: %w", key, backend.ErrConflict)
	}
	return v, err
}

// createTries bounds the attempts of one create that keeps finding a new
// tombstone (other clients creating and deleting the key meanwhile).
const createTries = 8

// create stores value under key if the key is absent: a PUT with
// If-None-Match: *, or, over a tombstone, with If-Match on the tombstone's
// ETag.
func (s *Store) create(ctx context.Context, key string, value []byte) (backend.Version, error) {
	body := encodeBody(value)
	tomb, _ := s.etags.tombstone(key)
	for range createTries {
		v, err := s.putIf(ctx, key, tomb, body)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, backend.ErrConflict) && !errors.Is(err, backend.ErrNotFound) {
			return backend.NoVersion, err
		}
		// The key exists (maybe as a tombstone), or its tombstone is gone.
		// Learn which with a GET, not a HEAD: a server that keeps objects
		// as files may answer a HEAD racing an overwrite with the new ETag
		// and the old size (versitygw 1.8.0 does), which could pass a live
		// value for a tombstone; its GET reads the ETag before it opens the
		// body, so a tombstone body never comes with a newer ETag, and an
		// older one fails the If-Match.
		_, etag, isTomb, err := s.get(ctx, key)
		switch {
		case errors.Is(err, backend.ErrNotFound):
			tomb = ""
		case err != nil:
			return backend.NoVersion, err
		case !isTomb:
			return backend.NoVersion, fmt.Errorf("s3: cas %q: %w (the key exists)", key, backend.ErrConflict)
		default:
			tomb = etag
		}
	}
	return backend.NoVersion, fmt.Errorf("s3: cas %q: %w (created and deleted by others %d times meanwhile)", key, backend.ErrConflict, createTries)
}

// putIf PUTs body under key if the object's ETag is etag, or, with etag
// "", if there is no object; in one attempt (noRetry).
func (s *Store) putIf(ctx context.Context, key, etag string, body []byte) (backend.Version, error) {
	in := &s3.PutObjectInput{Bucket: &s.bucket, Key: s.object(key)}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	return s.put(ctx, key, in, body, noRetry)
}

// Put writes value under key unconditionally (for write-once keys), with
// the SDK's retries: a repeated PUT of the same body is harmless.
func (s *Store) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	if err := s.check(ctx, key); err != nil {
		return backend.NoVersion, err
	}
	if err := backend.CheckValue(value, s.limit); err != nil {
		return backend.NoVersion, err
	}
	return s.put(ctx, key, &s3.PutObjectInput{Bucket: &s.bucket, Key: s.object(key)}, encodeBody(value))
}

// put sends in with body, a value's body or a tombstone, and returns the
// version of what it wrote.
func (s *Store) put(ctx context.Context, key string, in *s3.PutObjectInput, body []byte, optFns ...func(*s3.Options)) (backend.Version, error) {
	in.Body = bytes.NewReader(body)
	in.ContentLength = aws.Int64(int64(len(body)))
	out, err := s.c.PutObject(ctx, in, optFns...)
	if err != nil {
		s.etags.forget(key)
		return backend.NoVersion, storeError(ctx, "put", key, err)
	}
	etag := aws.ToString(out.ETag)
	if etag == "" {
		s.etags.forget(key)
		return backend.NoVersion, fmt.Errorf("s3: put %q: the server sent no ETag (the write applied)", key)
	}
	s.etags.put(key, etag, len(body) == tombLen)
	return versionOf(etag), nil
}

// etagOf returns the ETag of key at version ver: from the cache, else from
// a HEAD. A key that is missing or at another version is ErrConflict.
func (s *Store) etagOf(ctx context.Context, op, key string, ver backend.Version) (string, error) {
	if etag, ok := s.etags.get(key, ver); ok {
		return etag, nil
	}
	etag, tomb, err := s.head(ctx, op, key)
	if errors.Is(err, backend.ErrNotFound) || (err == nil && tomb) {
		return "", fmt.Errorf("s3: %s %q: %w (the key is missing)", op, key, backend.ErrConflict)
	}
	if err != nil {
		return "", err
	}
	if versionOf(etag) != ver {
		return "", fmt.Errorf("s3: %s %q: %w", op, key, backend.ErrConflict)
	}
	return etag, nil
}

// head returns the ETag of key's object, and whether it is a tombstone by
// its size (and caches the ETag of a value). A missing object is
// ErrNotFound.
func (s *Store) head(ctx context.Context, op, key string) (etag string, tomb bool, err error) {
	out, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: s.object(key)})
	if err != nil {
		err = storeError(ctx, op, key, err)
		if errors.Is(err, backend.ErrNotFound) {
			s.etags.forget(key)
		}
		return "", false, err
	}
	etag = aws.ToString(out.ETag)
	if etag == "" {
		return "", false, fmt.Errorf("s3: %s %q: the server sent no ETag", op, key)
	}
	tomb = aws.ToInt64(out.ContentLength) == tombLen
	if tomb {
		// Not cached as a tombstone: a HEAD racing an overwrite may pair
		// a tombstone's size with a live value's ETag (see create), and a
		// create would then overwrite that value.
		s.etags.forget(key)
	} else {
		s.etags.put(key, etag, false)
	}
	return etag, tomb, nil
}

// Delete removes key if it is at version old. It reads first (S3 answers a
// DELETE of a missing object with success, so only a read can say
// ErrNotFound), then, for a version, writes a tombstone with If-Match on
// the ETag it found, or with Options.AtomicDelete sends a DELETE with that
// If-Match. With AnyVersion, meant for write-once keys, it sends a plain
// DELETE.
func (s *Store) Delete(ctx context.Context, key string, old backend.Version) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	etag, tomb, err := s.head(ctx, "delete", key)
	if err != nil {
		return err
	}
	if tomb {
		return fmt.Errorf("s3: delete %q: %w", key, backend.ErrNotFound)
	}
	if old != backend.AnyVersion && versionOf(etag) != old {
		return fmt.Errorf("s3: delete %q: %w", key, backend.ErrConflict)
	}
	if old != backend.AnyVersion && !s.atomicDelete {
		_, err := s.putIf(ctx, key, etag, tombstone())
		return err // a 404: deleted since the HEAD, by another client
	}
	in := &s3.DeleteObjectInput{Bucket: &s.bucket, Key: s.object(key)}
	if old != backend.AnyVersion {
		in.IfMatch = aws.String(etag)
	}
	_, err = s.c.DeleteObject(ctx, in)
	s.etags.forget(key)
	if err != nil {
		return storeError(ctx, "delete", key, err) // a 404: deleted since the HEAD
	}
	return nil
}

// List calls fn for every key with prefix, listing object names a page
// (up to 1000) at a time. Tombstones, and objects under the Store's prefix
// that it did not name, are skipped.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string) error) error {
	if s.closed.Load() {
		return backend.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := s3.NewListObjectsV2Paginator(s.c, &s3.ListObjectsV2Input{
		Bucket: &s.bucket,
		Prefix: aws.String(s.prefix + objectName(prefix)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return storeError(ctx, "list", prefix, err)
		}
		for _, o := range page.Contents {
			name := aws.ToString(o.Key)
			if len(name) < len(s.prefix) || aws.ToInt64(o.Size) == tombLen {
				continue
			}
			key, ok := keyOf(name[len(s.prefix):])
			if !ok {
				continue
			}
			if err := fn(key); err != nil {
				return err
			}
		}
	}
	return nil
}
