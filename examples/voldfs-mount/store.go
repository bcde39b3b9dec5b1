package main

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voldfs/voldfs/backend"
)

// openTimeout bounds opening a store (connecting, where the store checks
// its servers answer).
const openTimeout = 30 * time.Second

// openStore opens the store a -store or -blocks URL names. The schemes are
// those of the store packages stores.go imports; see backend.OpenURL and
// each package's Scheme for the forms and their options.
func openStore(url string) (backend.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	return backend.OpenURL(ctx, url)
}

// quietClients keeps the store clients' own logging off stderr unless
// debug: go-redis logs every failed dial, and the mount reports a store's
// errors itself, one line each.
func quietClients(debug bool) {
	if !debug {
		goredis.SetLogger(discardLogger{})
	}
}

// discardLogger is a go-redis logger that logs nothing.
type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}
