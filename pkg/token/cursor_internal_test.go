package token

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

// rawCursor encodes body as a cursor with a correct checksum, so that only the checks after the
// checksum can reject it.
func rawCursor(body string) string {
	b := binary.BigEndian.AppendUint32([]byte(body), crc32.ChecksumIEEE([]byte(body)))
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestCursorRoundTrip(t *testing.T) {
	key := SortKey(time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC), "4f9Xa1bC2dE3fG4h")
	tests := []struct{ owner, status string }{
		{"alice", "active"},
		{"alice", ""},
		{"bob@example.com", "revoked"},
		{"a", "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.owner+"/"+tt.status, func(t *testing.T) {
			c := encodeCursor(key, tt.owner, tt.status)
			if strings.Contains(c, tt.owner) || strings.ContainsAny(c, "+/=") {
				t.Fatalf("cursor %q is not opaque base64url", c)
			}
			got, ok := decodeCursor(c, tt.owner, tt.status)
			if !ok || got != key {
				t.Fatalf("decodeCursor = %q, %v; want %q", got, ok, key)
			}
		})
	}
}

func TestCursorRejects(t *testing.T) {
	key := SortKey(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), "4f9Xa1bC2dE3fG4h")
	valid := encodeCursor(key, "alice", "active")
	tests := []struct {
		name, cursor, owner, status string
	}{
		{"other owner", valid, "bob", "active"},
		{"owner prefix", valid, "alic", "active"},
		{"other status", valid, "alice", ""},
		{"empty", "", "alice", "active"},
		{"too short", "AAA", "alice", "active"},
		{"not base64url", valid[:10] + "+" + valid[11:], "alice", "active"},
		{"padded", valid + "==", "alice", "active"},
		{"other version", rawCursor("v2\x00alice\x00active\x00" + key), "alice", "active"},
		{"too few parts", rawCursor("v1\x00alice\x00" + key), "alice", "active"},
		{"too many parts", rawCursor("v1\x00alice\x00active\x00" + key + "\x00x"), "alice", "active"},
		{"sort key without id", rawCursor("v1\x00alice\x00active\x002026-03-01T12:00:00.000000000Z"), "alice", "active"},
		{"sort key with bad id", rawCursor("v1\x00alice\x00active\x002026-03-01T12:00:00.000000000Z#../../x"), "alice", "active"},
		{"sort key with short time", rawCursor("v1\x00alice\x00active\x002026-03-01#4f9Xa1bC2dE3fG4h"), "alice", "active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := decodeCursor(tt.cursor, tt.owner, tt.status); ok {
				t.Fatalf("decodeCursor(%q) = %q; want rejection", tt.cursor, got)
			}
		})
	}
	if _, ok := decodeCursor(rawCursor("v1\x00alice\x00active\x00"+key), "alice", "active"); !ok {
		t.Fatal("rawCursor does not build what encodeCursor does")
	}
}

// TestCursorRejectsEveryCharacterChange: a cursor is its one spelling; any edit is refused.
func TestCursorRejectsEveryCharacterChange(t *testing.T) {
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	key := SortKey(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), "4f9Xa1bC2dE3fG4h")
	for _, owner := range []string{"alice", "bob", "carol"} { // three lengths mod 3
		c := encodeCursor(key, owner, "active")
		t.Run(owner, func(t *testing.T) {
			for i := 0; i < len(c); i++ {
				for j := 0; j < len(b64); j++ {
					if b64[j] == c[i] {
						continue
					}
					edited := c[:i] + string(b64[j]) + c[i+1:]
					if _, ok := decodeCursor(edited, owner, "active"); ok {
						t.Fatalf("accepted %q: position %d of %q changed to %q", edited, i, c, b64[j])
					}
				}
			}
		})
	}
}
