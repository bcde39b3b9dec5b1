//go:build !(linux || darwin)

package bolt

import (
	"context"
	"errors"

	"github.com/voldfs/voldfs/backend"
)

// Space reports errors.ErrUnsupported: this platform's statfs is not
// wired up.
func (s *Store) Space(ctx context.Context) (backend.Space, error) {
	return backend.Space{}, errors.ErrUnsupported
}
