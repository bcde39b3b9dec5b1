package s3_test

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
)

// TestLostReply loses the reply to a conditional PUT that the server
// applied: the CAS must say its outcome is unknown (not a conflict, which
// the SDK's retry of the PUT would have met), and a read shows the write.
func TestLostReply(t *testing.T) {
	p := newDropProxy(t, startServer(t))
	s := openStore(t, "http://"+p.addr())
	ctx := context.Background()
	for _, create := range []bool{true, false} {
		k, old := "new", backend.NoVersion
		if !create {
			var err error
			k = "old"
			old, err = s.CAS(ctx, k, backend.NoVersion, []byte("before"))
			require.NoError(t, err)
		}
		p.dropNext.Store(true)
		_, err := s.CAS(ctx, k, old, []byte("applied"))
		require.Error(t, err, "a CAS whose reply was lost (create=%v)", create)
		assert.NotErrorIs(t, err, backend.ErrConflict, "create=%v: a lost reply is an unknown outcome, not a conflict", create)
		assert.False(t, p.dropNext.Load(), "the proxy dropped no reply")
		got, _, err := s.Get(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, "applied", string(got), "create=%v: the server applied the PUT", create)
	}
}

// dropProxy forwards TCP to a server and, when dropNext is set, closes the
// connection that next carries a reply instead of forwarding it.
type dropProxy struct {
	l        net.Listener
	dropNext atomic.Bool
}

func newDropProxy(t *testing.T, endpoint string) *dropProxy {
	t.Helper()
	upstream := endpoint[len("http://"):]
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &dropProxy{l: l}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			wg.Go(func() { io.Copy(u, c); u.Close() })
			wg.Go(func() {
				defer c.Close()
				defer u.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := u.Read(buf)
					if n > 0 && p.dropNext.CompareAndSwap(true, false) {
						return // the reply is lost, the connection reset
					}
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	return p
}

func (p *dropProxy) addr() string { return p.l.Addr().String() }
