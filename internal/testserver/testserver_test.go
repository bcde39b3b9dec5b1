package testserver_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/voldfs/voldfs/internal/testserver"
)

func TestMemcached(t *testing.T) {
	addr := testserver.Memcached(t)
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "VERSION ") {
		t.Fatalf("version reply %q, %v", line, err)
	}
	if addr2 := testserver.Memcached(t); addr2 == addr {
		t.Fatalf("two servers on one address %s", addr)
	}
}
