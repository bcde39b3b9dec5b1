package backend

// Store URLs: a registry of schemes, in the manner of database/sql's drivers
// and gocloud's URL openers. A store package registers its scheme in an init
// function, so a program knows the schemes of the store packages it imports
// and no others: a program that imports only backend/memory links no server
// client.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Opener opens the store a URL of its scheme names. It is given the parsed
// URL (its Scheme lower case, no Fragment) and returns an error from BadURL
// for a URL it cannot take, saying what it expected. The context bounds any
// connecting the opener does; the store it returns must not keep it.
type Opener func(ctx context.Context, u *url.URL) (Store, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// Register makes the store scheme available to OpenURL. Store packages call
// it from an init function. It panics if scheme is not a valid lower-case
// URL scheme, if open is nil, or if the scheme is registered already.
func Register(scheme string, open Opener) {
	if !validScheme(scheme) {
		panic(fmt.Sprintf("backend: Register of invalid scheme %q", scheme))
	}
	if open == nil {
		panic("backend: Register of scheme " + scheme + " with a nil Opener")
	}
	openersMu.Lock()
	defer openersMu.Unlock()
	if _, dup := openers[scheme]; dup {
		panic("backend: Register called twice for scheme " + scheme)
	}
	openers[scheme] = open
}

// validScheme reports whether s is a URL scheme (RFC 3986) in lower case.
func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// Schemes returns the registered schemes, sorted.
func Schemes() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	s := make([]string, 0, len(openers))
	for k := range openers {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// ErrBadURL is wrapped by the error of OpenURL when the URL itself is wrong:
// it does not parse, names no registered scheme, or its opener cannot take it
// (see BadURL). Any other error is the store's: it could not be opened.
var ErrBadURL = errors.New("bad store URL")

// URLError is the error OpenURL returns: the URL it was given, with any
// password redacted (RedactURL), and what went wrong.
type URLError struct {
	URL string
	Err error
}

// Error returns `store "URL": ` and the underlying error's message.
func (e *URLError) Error() string { return fmt.Sprintf("store %q: %v", e.URL, e.Err) }

// Unwrap returns the underlying error.
func (e *URLError) Unwrap() error { return e.Err }

// badURL is a BadURL error: its message, wrapping ErrBadURL without saying so.
type badURL struct{ msg string }

func (e *badURL) Error() string        { return e.msg }
func (e *badURL) Is(target error) bool { return target == ErrBadURL }

// BadURL returns an error that wraps ErrBadURL with the message
// fmt.Sprintf(format, args...), which should say what was expected. An
// Opener returns it for a URL it cannot take.
func BadURL(format string, args ...any) error {
	return &badURL{fmt.Sprintf(format, args...)}
}

// OpenURL opens the store that raw names: SCHEME:... where SCHEME is one of
// Schemes(), each registered by the store package that serves it (importing
// github.com/voldfs/voldfs/backend/bolt registers bolt:, for example). Every
// error is a *URLError naming the URL, on one line; one wrapping ErrBadURL
// means the URL itself is wrong. The caller closes the store.
func OpenURL(ctx context.Context, raw string) (Store, error) {
	fail := func(err error) (Store, error) {
		return nil, &URLError{URL: RedactURL(raw), Err: err}
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail(BadURL("not a URL: %v", err))
	}
	if u.Scheme == "" {
		return fail(BadURL("no scheme: want SCHEME:..., where SCHEME is %s", knownSchemes()))
	}
	openersMu.RLock()
	open := openers[u.Scheme]
	openersMu.RUnlock()
	if open == nil {
		return fail(BadURL("unknown scheme %q: want %s", u.Scheme, knownSchemes()))
	}
	if u.Fragment != "" || strings.HasSuffix(raw, "#") {
		return fail(BadURL("a store URL has no #fragment (write # in a path as %%23)"))
	}
	s, err := open(ctx, u)
	if err != nil {
		return fail(err)
	}
	return s, nil
}

// knownSchemes lists the registered schemes for an error message.
func knownSchemes() string {
	s := Schemes()
	if len(s) == 0 {
		return "one a store package registers (this program imports none)"
	}
	if len(s) == 1 {
		return s[0]
	}
	return "one of " + strings.Join(s, ", ")
}

// secretParams are the query parameters RedactURL hides, by substring of
// their lower-case names.
var secretParams = []string{"password", "secret", "token", "credential"}

// RedactURL returns raw with any password in it replaced by "xxxxx": the
// user information's, and the value of any query parameter whose name says
// it is a secret (password, secret, token, credential). A raw that does not
// parse is returned as it is.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	changed := false
	if _, ok := u.User.Password(); ok {
		changed = true
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err == nil {
			for k := range q {
				lk := strings.ToLower(k)
				if slices.ContainsFunc(secretParams, func(s string) bool { return strings.Contains(lk, s) }) {
					q[k] = []string{"xxxxx"}
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
	}
	if !changed {
		return raw
	}
	return u.Redacted()
}

// URLHosts returns the servers of u's authority, a comma-separated list of
// HOST[:PORT] (memcache://a:11211,b:11211), each with defaultPort where it
// gives none. An IPv6 address is written in brackets, [::1]:11211; net/url
// parses one only as the list's sole server (use a host name in a list).
// An empty list, or an empty or malformed entry, is a BadURL error.
func URLHosts(u *url.URL, defaultPort string) ([]string, error) {
	if u.Host == "" {
		return nil, BadURL("no server: want %s://HOST[:PORT][,HOST[:PORT]...]", u.Scheme)
	}
	var hosts []string
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			return nil, BadURL("an empty server in %q: want HOST[:PORT][,HOST[:PORT]...]", u.Host)
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			// No port (or a bare IPv6 address without brackets).
			if strings.Contains(strings.Trim(h, "[]"), ":") && !strings.HasPrefix(h, "[") {
				return nil, BadURL("server %q: write an IPv6 address in brackets, [ADDR]:PORT", h)
			}
			host, port = strings.Trim(h, "[]"), defaultPort
		}
		if host == "" {
			return nil, BadURL("server %q has no host name", h)
		}
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return nil, BadURL("server %q: the port must be a number", h)
		}
		hosts = append(hosts, net.JoinHostPort(host, port))
	}
	return hosts, nil
}

// URLQuery returns u's query parameters, one value each. A parameter not in
// known, one given twice or a query that does not parse is a BadURL error
// that names the known ones.
func URLQuery(u *url.URL, known ...string) (map[string]string, error) {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, BadURL("query %q: %v", u.RawQuery, err)
	}
	want := "it takes none"
	if len(known) > 0 {
		want = "want " + strings.Join(known, ", ")
	}
	out := make(map[string]string, len(q))
	for k, v := range q {
		if !slices.Contains(known, k) {
			return nil, BadURL("unknown option %q (%s)", k, want)
		}
		if len(v) != 1 {
			return nil, BadURL("option %s given %d times", k, len(v))
		}
		out[k] = v[0]
	}
	return out, nil
}
