package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/backendtest"
)

// BenchmarkStore measures the Store's calls, one at a time, beside the raw
// S3 requests they are made of (BenchmarkRaw): a Get is a GET, a CAS after
// a Get a conditional PUT, a Put a PUT, a Delete a HEAD and a conditional
// PUT (of a tombstone).
//
//	go test -run '^$' -bench . -benchtime 200x ./backend/s3
func BenchmarkStore(b *testing.B) {
	endpoint := startServer(b)
	s := openStore(b, endpoint)
	ctx := context.Background()
	val := bytes.Repeat([]byte("v"), 1024)
	k := "bench/k"
	ver, err := s.CAS(ctx, k, backend.NoVersion, val)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			if _, ver, err = s.Get(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CAS", func(b *testing.B) {
		for b.Loop() {
			if ver, err = s.CAS(ctx, k, ver, val); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Put", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := backend.Put(ctx, s, fmt.Sprint("bench/p", i), val); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Delete", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			b.StopTimer()
			dk := fmt.Sprint("bench/d", i)
			v, err := s.CAS(ctx, dk, backend.NoVersion, val)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := s.Delete(ctx, dk, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRaw measures the S3 requests the Store sends, through the same
// SDK client setup, with no Store in between.
func BenchmarkRaw(b *testing.B) {
	endpoint := startServer(b)
	c := s3.New(s3.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(testAccess, testSecret, ""),
		UsePathStyle: true,
		BaseEndpoint: aws.String(endpoint),
	})
	ctx := context.Background()
	val := bytes.Repeat([]byte("v"), 1024)
	bucket, key := aws.String(testBucket), aws.String("raw/k")
	put := func(in *s3.PutObjectInput) *s3.PutObjectOutput {
		in.Bucket, in.Body = bucket, bytes.NewReader(val)
		if in.Key == nil {
			in.Key = key
		}
		out, err := c.PutObject(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	etag := put(&s3.PutObjectInput{}).ETag
	b.Run("GET", func(b *testing.B) {
		for b.Loop() {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: key})
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, out.Body)
			out.Body.Close()
		}
	})
	b.Run("HEAD", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: key}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PUT-If-Match", func(b *testing.B) {
		for b.Loop() {
			etag = put(&s3.PutObjectInput{IfMatch: etag}).ETag
		}
	})
	b.Run("PUT", func(b *testing.B) { // to a fresh key, as Store.Put writes blocks
		i := 0
		for b.Loop() {
			i++
			put(&s3.PutObjectInput{Key: aws.String(fmt.Sprint("raw/p", i))})
		}
	})
	b.Run("DELETE", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: aws.String("raw/missing")}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSuite is the suite every store runs (Get and CAS, serial and
// parallel, 1 KiB and 512 KiB values).
func BenchmarkSuite(b *testing.B) {
	backendtest.RunBenchmarks(b, openStore(b, startServer(b)))
}
