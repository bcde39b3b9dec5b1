package s3

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/voldfs/voldfs/backend"
)

// Scheme is the URL scheme OpenURL opens.
const Scheme = "s3"

// OpenURL opens a Store from a URL of the form
//
//	s3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT&region=REGION&...]
//
// PREFIX becomes Options.Prefix with a trailing slash (a folder of the
// bucket). The query parameters are:
//
//   - endpoint: the server's base URL, for S3-compatible servers (default:
//     AWS S3 of the region). With an endpoint, requests use path-style
//     addressing (http://HOST:PORT/BUCKET/KEY) unless path_style=false.
//   - region: the signing region (default $AWS_REGION, else
//     $AWS_DEFAULT_REGION, else us-east-1).
//   - access_key, secret_key, session_token: credentials (default
//     $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY, $AWS_SESSION_TOKEN). A
//     URL with a secret in it is as secret as the key: prefer the variables.
//   - path_style: true or false, see endpoint.
//   - max_value_size: Options.MaxValueSize in bytes.
//   - atomic_delete: true sets Options.AtomicDelete (only for servers
//     whose conditional DELETE is atomic, such as AWS S3).
//
// OpenURL sends no request. For other ways of finding credentials (shared
// config files, instance roles), build the client with aws-sdk-go-v2/config
// and call New.
func OpenURL(ctx context.Context, u *url.URL) (backend.Store, error) {
	if u.Scheme != Scheme {
		return nil, fmt.Errorf("s3: URL scheme %q, want %q", u.Scheme, Scheme)
	}
	bucket := u.Host
	if bucket == "" {
		return nil, errors.New("s3: URL has no bucket: want s3://BUCKET[/PREFIX]")
	}
	if u.User != nil {
		return nil, errors.New("s3: put credentials in access_key and secret_key (or the AWS_ variables), not in the URL's user part")
	}
	var opts Options
	if p := strings.Trim(u.Path, "/"); p != "" {
		opts.Prefix = p + "/"
	}
	q := u.Query()
	for name := range q {
		switch name {
		case "endpoint", "region", "access_key", "secret_key", "session_token", "path_style", "max_value_size", "atomic_delete":
		default:
			return nil, fmt.Errorf("s3: unknown URL parameter %q (want endpoint, region, access_key, secret_key, session_token, path_style, max_value_size or atomic_delete)", name)
		}
	}
	region := firstOf(q.Get("region"), os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"), "us-east-1")
	access := firstOf(q.Get("access_key"), os.Getenv("AWS_ACCESS_KEY_ID"))
	secret := firstOf(q.Get("secret_key"), os.Getenv("AWS_SECRET_ACCESS_KEY"))
	token := firstOf(q.Get("session_token"), os.Getenv("AWS_SESSION_TOKEN"))
	if access == "" || secret == "" {
		return nil, errors.New("s3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or access_key and secret_key in the URL)")
	}
	endpoint := q.Get("endpoint")
	if endpoint != "" {
		e, err := url.Parse(endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return nil, fmt.Errorf("s3: endpoint %q: want http://HOST:PORT or https://HOST[:PORT]", endpoint)
		}
	}
	pathStyle, err := boolParam(q, "path_style", endpoint != "")
	if err != nil {
		return nil, err
	}
	if opts.AtomicDelete, err = boolParam(q, "atomic_delete", false); err != nil {
		return nil, err
	}
	if v := q.Get("max_value_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("s3: max_value_size=%q: want a positive number of bytes", v)
		}
		opts.MaxValueSize = n
	}
	httpClient := awshttp.NewBuildableClient()
	c := s3.New(s3.Options{
		Region:       region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(access, secret, token)),
		UsePathStyle: pathStyle,
		HTTPClient:   httpClient,
	}, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	s := New(c, bucket, opts)
	s.onClose = func() { httpClient.GetTransport().CloseIdleConnections() }
	return s, nil
}

// boolParam returns the query parameter name as a bool, def if absent.
func boolParam(q url.Values, name string, def bool) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("s3: %s=%q: want true or false", name, v)
	}
	return b, nil
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
