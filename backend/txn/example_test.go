package txn_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/backend/txn"
)

// A transfer between two keys of a store that has only per-key CAS.
func ExampleWrap() {
	ctx := context.Background()
	s := txn.Wrap(casOnly{memory.New()})
	va, _ := s.CAS(ctx, "acct/a", backend.NoVersion, []byte("10"))
	vb, _ := s.CAS(ctx, "acct/b", backend.NoVersion, []byte("0"))

	_, err := backend.Commit(ctx, s, []backend.Op{
		{Key: "acct/a", Old: va, Value: []byte("7")},
		{Key: "acct/b", Old: vb, Value: []byte("3")},
	})
	fmt.Println("transfer:", err)

	// The same versions again: nothing changes.
	_, err = backend.Commit(ctx, s, []backend.Op{
		{Key: "acct/a", Old: va, Value: []byte("0")},
		{Key: "acct/b", Old: vb, Value: []byte("10")},
	})
	var ce *backend.ConflictError
	fmt.Println("stale:", errors.As(err, &ce), ce.Key)

	a, _, _ := s.Get(ctx, "acct/a")
	b, _, _ := s.Get(ctx, "acct/b")
	fmt.Printf("a=%s b=%s\n", a, b)
	// Output:
	// transfer: <nil>
	// stale: true acct/a
	// a=7 b=3
}
