package backend_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/testserver"
)

// roundTrip checks that s stores and returns a value.
func roundTrip(t *testing.T, s backend.Store) {
	t.Helper()
	ctx := context.Background()
	v, err := s.CAS(ctx, "url-test", backend.NoVersion, []byte("hello"))
	require.NoError(t, err)
	got, ver, err := s.Get(ctx, "url-test")
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got))
	assert.Equal(t, v, ver)
}

// TestOpenURL opens every URL form of the stores in this module and uses
// the store.
func TestOpenURL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Chdir(dir)
	mc1, mc2 := testserver.Memcached(t), testserver.Memcached(t)
	cases := []struct {
		url  string
		file string // the bolt file it must create
		want any    // the store's type
	}{
		{url: "mem:", want: &memory.Store{}},
		{url: "mem://", want: &memory.Store{}},
		{url: "bolt:rel.db", file: "rel.db", want: &bolt.Store{}},
		{url: "bolt:sub/rel.db?sync=always", file: "sub/rel.db", want: &bolt.Store{}},
		{url: "bolt:" + dir + "/abs.db", file: "abs.db", want: &bolt.Store{}},
		{url: "bolt://" + dir + "/triple.db?sync=none", file: "triple.db", want: &bolt.Store{}},
		{url: "bolt:odd%3Fname%25.db?interval=5ms", file: "odd?name%.db", want: &bolt.Store{}},
		{url: "BOLT:upper.db", file: "upper.db", want: &bolt.Store{}},
		{url: "memcache://" + mc1, want: &memcache.Store{}},
		{url: "memcache://" + mc1 + "," + mc2 + "/?timeout=1s&max-value-size=1000", want: &memcache.Store{}},
	}
	require.NoError(t, os.Mkdir("sub", 0o755))
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			s, err := backend.OpenURL(ctx, c.url)
			require.NoError(t, err)
			defer func() { assert.NoError(t, s.Close()) }()
			assert.IsType(t, c.want, s)
			roundTrip(t, s)
			if c.file != "" {
				assert.FileExists(t, filepath.Join(dir, c.file))
			}
		})
	}
	// Two servers in one URL spread the keys over both.
	s, err := backend.OpenURL(ctx, "memcache://"+mc1+","+mc2)
	require.NoError(t, err)
	defer s.Close()
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		_, err := s.CAS(ctx, k, backend.NoVersion, []byte(k))
		require.NoError(t, err)
	}
	for _, addr := range []string{mc1, mc2} {
		one, err := memcache.New(addr)
		require.NoError(t, err)
		items, err := one.GetMulti(ctx, []string{"a", "b", "c", "d", "e", "f", "g", "h"})
		one.Close()
		require.NoError(t, err)
		assert.NotEmpty(t, items, "no key on %s", addr)
	}
}

// TestOpenURLErrors: every bad URL is one line naming the URL and what was
// expected, wrapping ErrBadURL, and creates nothing.
func TestOpenURLErrors(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, c := range []struct{ url, msg string }{
		{"", `store "": no scheme: want SCHEME:..., where SCHEME is one of bolt, mem, memcache`},
		{"voldfs.db", `store "voldfs.db": no scheme: want SCHEME:..., where SCHEME is one of bolt, mem, memcache`},
		{"ftp://x", `store "ftp://x": unknown scheme "ftp": want one of bolt, mem, memcache`},
		{"bolt:%zz", `store "bolt:%zz": path "%zz": invalid URL escape "%zz" (write % as %25)`},
		{"bolt:/50%.db", `store "bolt:/50%.db": not a URL: invalid URL escape "%.d"`},
		{"bolt:x.db#frag", `store "bolt:x.db#frag": a store URL has no #fragment (write # in a path as %23)`},
		{"bolt:", `store "bolt:": no file path: want bolt:PATH (relative or absolute) or bolt:///ABSOLUTE/PATH`},
		{"bolt://x.db", `store "bolt://x.db": bolt://x.db names a host, and a bolt file has none: write bolt:x.db for a relative path, or bolt:///x.db for an absolute one`},
		{"bolt://tmp/x.db", `store "bolt://tmp/x.db": bolt://tmp names a host, and a bolt file has none: write bolt:tmp/x.db for a relative path, or bolt:///tmp/x.db for an absolute one`},
		{"bolt:x.db?sync=sometimes", `store "bolt:x.db?sync=sometimes": option sync=sometimes: want sync=interval, always or none`},
		{"bolt:x.db?interval=0", `store "bolt:x.db?interval=0": option interval=0: want a positive duration such as 20ms`},
		{"bolt:x.db?interval=fast", `store "bolt:x.db?interval=fast": option interval=fast: want a positive duration such as 20ms`},
		{"bolt:x.db?sync=always&interval=5ms", `store "bolt:x.db?sync=always&interval=5ms": option interval is for sync=interval, not sync=always`},
		{"bolt:x.db?sync=always&sync=none", `store "bolt:x.db?sync=always&sync=none": option sync given 2 times`},
		{"bolt:x.db?fsync=1", `store "bolt:x.db?fsync=1": unknown option "fsync" (want sync, interval)`},
		{"bolt:x.db?sync=%zz", `store "bolt:x.db?sync=%zz": query "sync=%zz": invalid URL escape "%zz"`},
		{"mem:x", `store "mem:x": mem takes nothing after the colon: want mem:`},
		{"mem:?limit=1", `store "mem:?limit=1": mem takes nothing after the colon: want mem:`},
		{"memcache:", `store "memcache:": no server: want memcache://HOST[:PORT][,HOST[:PORT]...]`},
		{"memcache:h:1", `store "memcache:h:1": no server: want memcache://HOST[:PORT][,HOST[:PORT]...]`},
		{"memcache://", `store "memcache://": no server: want memcache://HOST[:PORT][,HOST[:PORT]...]`},
		{"memcache://h:1,,h:2", `store "memcache://h:1,,h:2": an empty server in "h:1,,h:2": want HOST[:PORT][,HOST[:PORT]...]`},
		{"memcache://h:1,:2", `store "memcache://h:1,:2": server ":2" has no host name`},
		{"memcache://h:x", `store "memcache://h:x": not a URL: invalid port ":x" after host`},
		{"memcache://h:1,h2:/", `store "memcache://h:1,h2:/": server "h2:": the port must be a number`},
		{"memcache://u:pw@h:1", `store "memcache://u:xxxxx@h:1": memcached has no users or passwords: want memcache://HOST[:PORT][,HOST[:PORT]...]`},
		{"memcache://h:1/fs", `store "memcache://h:1/fs": path "/fs": memcached has no key spaces (use -name for several filesystems): want memcache://HOST[:PORT][,HOST[:PORT]...]`},
		{"memcache://h:1?timeout=-1s", `store "memcache://h:1?timeout=-1s": option timeout=-1s: want a positive duration such as 2s`},
		{"memcache://h:1?max-value-size=big", `store "memcache://h:1?max-value-size=big": option max-value-size=big: want a positive number of bytes`},
		{"memcache://h:1?ttl=5", `store "memcache://h:1?ttl=5": unknown option "ttl" (want timeout, max-value-size)`},
	} {
		t.Run(c.url, func(t *testing.T) {
			s, err := backend.OpenURL(context.Background(), c.url)
			if !assert.Error(t, err) {
				s.Close()
				return
			}
			assert.Equal(t, c.msg, err.Error())
			assert.ErrorIs(t, err, backend.ErrBadURL)
			var ue *backend.URLError
			assert.ErrorAs(t, err, &ue)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "a bad URL left files behind")
}

// TestOpenURLStoreError: a URL that is right but names a store that cannot
// be opened is a URLError that does not wrap ErrBadURL.
func TestOpenURLStoreError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "held.db")
	s, err := backend.OpenURL(context.Background(), "bolt:"+path)
	require.NoError(t, err)
	defer s.Close()
	_, err = backend.OpenURL(context.Background(), "bolt:"+path)
	require.Error(t, err)
	assert.NotErrorIs(t, err, backend.ErrBadURL)
	assert.Contains(t, err.Error(), `store "bolt:`+path+`": `)
	assert.Contains(t, err.Error(), "is another process using it?")
}

func TestRegister(t *testing.T) {
	open := func(context.Context, *url.URL) (backend.Store, error) { return memory.New(), nil }
	assert.PanicsWithValue(t, "backend: Register called twice for scheme mem", func() { backend.Register("mem", open) })
	assert.Panics(t, func() { backend.Register("Upper", open) })
	assert.Panics(t, func() { backend.Register("", open) })
	assert.Panics(t, func() { backend.Register("9p", open) })
	assert.Panics(t, func() { backend.Register("url-test-nil", nil) })
	var got *url.URL
	backend.Register("url-test+x", func(_ context.Context, u *url.URL) (backend.Store, error) {
		got = u
		return nil, errors.New("refused")
	})
	defer backend.Unregister("url-test+x")
	assert.Contains(t, backend.Schemes(), "url-test+x")
	_, err := backend.OpenURL(context.Background(), "URL-TEST+X://h/p?q=1")
	assert.EqualError(t, err, `store "URL-TEST+X://h/p?q=1": refused`)
	require.NotNil(t, got)
	assert.Equal(t, "url-test+x", got.Scheme)
	assert.Equal(t, "h", got.Host)
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:pw@h:1/0":                       "redis://:xxxxx@h:1/0",
		"redis://user:pw@h:1":                     "redis://user:xxxxx@h:1",
		"redis://user@h:1":                        "redis://user@h:1",
		"s3://b/p?endpoint=http://h&secret_key=s": "s3://b/p?endpoint=http%3A%2F%2Fh&secret_key=xxxxx",
		"s3://b/p?Session-Token=s":                "s3://b/p?Session-Token=xxxxx",
		"bolt:x.db?sync=none":                     "bolt:x.db?sync=none",
		"%zz":                                     "%zz",
	} {
		assert.Equal(t, want, backend.RedactURL(in), in)
	}
	_, err := backend.OpenURL(context.Background(), "nope://u:secret@h")
	require.Error(t, err)
	assert.False(t, strings.Contains(err.Error(), "secret"), err.Error())
}

func TestURLHosts(t *testing.T) {
	for _, c := range []struct {
		host string
		want []string
		err  string
	}{
		{host: "a", want: []string{"a:99"}},
		{host: "a:1", want: []string{"a:1"}},
		{host: "a:1,b", want: []string{"a:1", "b:99"}},
		{host: "[::1]", want: []string{"[::1]:99"}},
		{host: "[::1]:5", want: []string{"[::1]:5"}},
		{host: "a,[::1]:5", want: []string{"a:99", "[::1]:5"}},
		{host: "", err: "no server: want x://HOST[:PORT][,HOST[:PORT]...]"},
		{host: "a,", err: `an empty server in "a,": want HOST[:PORT][,HOST[:PORT]...]`},
		{host: "::1", err: `server "::1": write an IPv6 address in brackets, [ADDR]:PORT`},
		{host: "a:", err: `server "a:": the port must be a number`},
		{host: "a:1:2", err: `server "a:1:2": write an IPv6 address in brackets, [ADDR]:PORT`},
	} {
		got, err := backend.URLHosts(&url.URL{Scheme: "x", Host: c.host}, "99")
		if c.err != "" {
			assert.EqualError(t, err, c.err, c.host)
			assert.ErrorIs(t, err, backend.ErrBadURL)
			continue
		}
		if assert.NoError(t, err, c.host) {
			assert.Equal(t, c.want, got, c.host)
		}
	}
}

// A program opens a store by URL; the store packages it imports (here
// backend/memory, backend/bolt and backend/memcache) registered their
// schemes. A bad URL is one line saying what was expected.
func ExampleOpenURL() {
	ctx := context.Background()
	s, err := backend.OpenURL(ctx, "mem:")
	if err != nil {
		panic(err)
	}
	defer s.Close()
	fmt.Printf("%T\n", s)

	_, err = backend.OpenURL(ctx, "bolt://voldfs.db")
	fmt.Println(err)
	fmt.Println(errors.Is(err, backend.ErrBadURL))
	// Output:
	// *memory.Store
	// store "bolt://voldfs.db": bolt://voldfs.db names a host, and a bolt file has none: write bolt:voldfs.db for a relative path, or bolt:///voldfs.db for an absolute one
	// true
}
