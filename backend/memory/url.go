package memory

import (
	"context"
	"net/url"

	"github.com/voldfs/voldfs/backend"
)

// Scheme is the URL scheme this package registers with backend.Register
// (importing the package is enough for backend.OpenURL to know it). The URL
// mem: names a new, empty store in memory (New): every open of it is a store
// of its own, gone when it is closed.
const Scheme = "mem"

func init() { backend.Register(Scheme, openURL) }

func openURL(_ context.Context, u *url.URL) (backend.Store, error) {
	if u.Opaque != "" || u.Host != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, backend.BadURL("mem takes nothing after the colon: want mem:")
	}
	return New(), nil
}
