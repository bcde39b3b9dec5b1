package redis

import (
	"strconv"
	"strings"
	"sync"
)

// numSlots is the number of Redis Cluster hash slots.
const numSlots = 16384

// keySlot returns the Redis Cluster hash slot of key, by Redis's rule: the
// CRC16 of the key, or of its hash tag (the text between the first '{' and
// the first '}' after it, if not empty), modulo 16384. A standalone server has
// no slots; the store uses them there too, so it has a single code path.
func keySlot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	return int(crc16(key) % numSlots)
}

// counterKey returns the name of slot's version counter. The name contains a
// space, which voldfs keys cannot, so it never collides with a key of any
// store, and List skips it.
func counterKey(slot int) string {
	return "voldfs version {" + slotTags()[slot] + "}"
}

// slotTags returns, for every slot, a short hash tag that hashes to it: the
// first decimal number that does.
var slotTags = sync.OnceValue(func() []string {
	tags := make([]string, numSlots)
	left := numSlots
	for i := 0; left > 0; i++ {
		t := strconv.Itoa(i)
		if s := crc16(t) % numSlots; tags[s] == "" {
			tags[s] = t
			left--
		}
	}
	return tags
})

// crc16Table is the table of CRC-16/XMODEM (polynomial 0x1021), the checksum
// Redis Cluster hashes keys with.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

func crc16(s string) uint16 {
	var c uint16
	for i := 0; i < len(s); i++ {
		c = c<<8 ^ crc16Table[byte(c>>8)^s[i]]
	}
	return c
}
