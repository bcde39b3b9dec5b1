package bolt

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseURL: the path and options a bolt URL gives (the errors are in
// backend's TestOpenURLErrors).
func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		path string
		opts Options
	}{
		{in: "bolt:/x/v.db", path: "/x/v.db"},
		{in: "bolt:///x/v.db", path: "/x/v.db"},
		{in: "bolt:v.db", path: "v.db"},
		{in: "bolt:../v.db", path: "../v.db"},
		{in: "bolt:v.db?", path: "v.db"},
		{in: "bolt:/a%20b/v.db", path: "/a b/v.db"},
		{in: "bolt:a%20b.db", path: "a b.db"},
		{in: "bolt:odd%3Fname%23.db", path: "odd?name#.db"},
		{in: "bolt:v.db?sync=interval&interval=5ms", path: "v.db", opts: Options{Interval: 5 * time.Millisecond}},
		{in: "bolt:v.db?sync=always", path: "v.db", opts: Options{Durability: SyncAlways}},
		{in: "bolt:v.db?sync=none&interval=1s", path: "v.db", opts: Options{NoSync: true, Interval: time.Second}},
	} {
		u, err := url.Parse(tc.in)
		require.NoError(t, err, tc.in)
		path, opts, err := ParseURL(u)
		if assert.NoError(t, err, tc.in) {
			assert.Equal(t, tc.path, path, tc.in)
			assert.Equal(t, tc.opts, *opts, tc.in)
		}
	}
}
