package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/voldfs/voldfs/backend"
)

// Scheme is the URL scheme this package registers with backend.Register
// (importing the package is enough for backend.OpenURL to know it):
//
//	s3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT&region=REGION&...]
//
// PREFIX becomes Options.Prefix with a trailing slash (a folder of the
// bucket). Options are query parameters:
//
//   - endpoint: the server's base URL, for S3-compatible servers (default:
//     AWS S3 of the region). With an endpoint, requests use path-style
//     addressing (http://HOST:PORT/BUCKET/KEY) unless path-style=false.
//   - region: the signing region (default $AWS_REGION, else
//     $AWS_DEFAULT_REGION, else us-east-1).
//   - access-key, secret-key, session-token: credentials (default
//     $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY, $AWS_SESSION_TOKEN). A
//     URL with a secret in it is as secret as the key: prefer the
//     variables (backend.RedactURL hides secret-key and session-token).
//   - path-style: true or false, see endpoint.
//   - max-value-size: Options.MaxValueSize in bytes.
//   - atomic-delete: true sets Options.AtomicDelete (only for servers
//     whose conditional DELETE is atomic, such as AWS S3).
//
// Opening checks the bucket with a HEAD request (bounded by 10 s and the
// context), so a wrong endpoint, bucket or key is an error at once. For
// other ways of finding credentials (shared config files, instance roles),
// build the client with aws-sdk-go-v2/config and call New.
const Scheme = "s3"

func init() { backend.Register(Scheme, openURL) }

// openTimeout bounds the bucket check of a store opened by URL.
const openTimeout = 10 * time.Second

func openURL(ctx context.Context, u *url.URL) (backend.Store, error) {
	const want = "want s3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT]"
	if u.Opaque != "" || u.Host == "" {
		return nil, backend.BadURL("no bucket: %s", want)
	}
	if u.User != nil {
		return nil, backend.BadURL("credentials go in access-key and secret-key (or the AWS_ variables), not before the bucket")
	}
	q, err := backend.URLQuery(u, "endpoint", "region", "access-key", "secret-key", "session-token", "path-style", "max-value-size", "atomic-delete")
	if err != nil {
		return nil, err
	}
	var opts Options
	if p := strings.Trim(u.Path, "/"); p != "" {
		opts.Prefix = p + "/"
	}
	region := firstOf(q["region"], os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"), "us-east-1")
	access := firstOf(q["access-key"], os.Getenv("AWS_ACCESS_KEY_ID"))
	secret := firstOf(q["secret-key"], os.Getenv("AWS_SECRET_ACCESS_KEY"))
	token := firstOf(q["session-token"], os.Getenv("AWS_SESSION_TOKEN"))
	if access == "" || secret == "" {
		return nil, backend.BadURL("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the options access-key and secret-key)")
	}
	endpoint := q["endpoint"]
	if endpoint != "" {
		e, err := url.Parse(endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return nil, backend.BadURL("option endpoint=%s: want http://HOST:PORT or https://HOST[:PORT]", endpoint)
		}
	}
	pathStyle, err := boolParam(q, "path-style", endpoint != "")
	if err != nil {
		return nil, err
	}
	if opts.AtomicDelete, err = boolParam(q, "atomic-delete", false); err != nil {
		return nil, err
	}
	if v, ok := q["max-value-size"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, backend.BadURL("option max-value-size=%s: want a positive number of bytes", v)
		}
		opts.MaxValueSize = n
	}
	// Keep as many idle connections as a GetMulti and voldfs's parallel
	// block reads use at once (the SDK keeps 10 per host).
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 64
	})
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
	s := New(c, u.Host, opts)
	s.onClose = func() { httpClient.GetTransport().CloseIdleConnections() }
	hctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	if _, err := c.HeadBucket(hctx, &s3.HeadBucketInput{Bucket: aws.String(u.Host)}); err != nil {
		s.Close()
		where := "AWS S3 in " + region
		if endpoint != "" {
			where = endpoint
		}
		return nil, fmt.Errorf("s3: bucket %q at %s: %w", u.Host, where, bucketError(err))
	}
	return s, nil
}

// bucketError says plainly why a HEAD of the bucket failed.
func bucketError(err error) error {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return errors.New("no such bucket")
		case http.StatusForbidden:
			return errors.New("access denied (check the credentials)")
		}
	}
	return err
}

// boolParam returns the option name as a bool, def if absent.
func boolParam(q map[string]string, name string, def bool) (bool, error) {
	v, ok := q[name]
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, backend.BadURL("option %s=%s: want true or false", name, v)
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
