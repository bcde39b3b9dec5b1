package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/voldfs/voldfs/backend"
)

// outcome is what a failed S3 request says about its effect.
type outcome int

const (
	unknown     outcome = iota // may or may not have applied
	notFound                   // 404: no such key
	conflict                   // 412 (or 409 from a concurrent conditional write)
	tooLarge                   // the server refused the size
	noSpace                    // the server is full
	invalidKey                 // the server refused the name
	interrupted                // the caller's context ended
)

// classify says what err, from an S3 request, means. S3 answers a refusal
// with a 4xx status before it applies anything; a 5xx, a transport error or
// a missing reply leaves the outcome unknown.
func classify(ctx context.Context, err error) outcome {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return interrupted
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchBucket":
			// A 404, but not a missing key: a Get must not report a
			// deleted bucket as an empty one.
			return unknown
		case "NoSuchKey", "NotFound":
			return notFound
		case "PreconditionFailed", "ConditionalRequestConflict":
			return conflict
		case "EntityTooLarge":
			return tooLarge
		case "InsufficientStorage", "QuotaExceeded", "XMinioStorageFull", "StorageFull":
			return noSpace
		case "KeyTooLongError", "XMinioInvalidObjectName":
			return invalidKey
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch code := re.HTTPStatusCode(); {
		case code == http.StatusNotFound:
			return notFound
		case code == http.StatusPreconditionFailed:
			return conflict
		case code == http.StatusRequestEntityTooLarge:
			return tooLarge
		case code == http.StatusInsufficientStorage:
			return noSpace
		}
	}
	return unknown
}

// storeError turns err from a request on key into the error a Store
// returns: a backend sentinel where the outcome is definite, the context's
// error where the caller's context ended, else err itself (unknown).
func storeError(ctx context.Context, op, key string, err error) error {
	switch classify(ctx, err) {
	case notFound:
		return fmt.Errorf("s3: %s %q: %w", op, key, backend.ErrNotFound)
	case conflict:
		return fmt.Errorf("s3: %s %q: %w", op, key, backend.ErrConflict)
	case tooLarge:
		return fmt.Errorf("s3: %s %q: %w (%v)", op, key, backend.ErrTooLarge, err)
	case noSpace:
		return fmt.Errorf("s3: %s %q: %w (%v)", op, key, backend.ErrNoSpace, err)
	case invalidKey:
		return fmt.Errorf("s3: %s %q: %w (%v)", op, key, backend.ErrInvalidKey, err)
	case interrupted:
		return fmt.Errorf("s3: %s %q: %w", op, key, ctx.Err())
	}
	return fmt.Errorf("s3: %s %q: %w", op, key, err)
}
