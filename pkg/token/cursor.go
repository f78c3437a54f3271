package token

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"strings"
)

// A list cursor is opaque to callers: base64url of "v1\x00<owner>\x00<status>\x00<sort key>" and
// a CRC32 of that text. The owner and status bind a cursor to its list, so a cursor cannot be
// replayed against another owner's list, and the checksum rejects hand-edited cursors. Cursors
// grant nothing: the owner check of the list call still applies.
const cursorVersion = "v1"

func encodeCursor(sortKey, owner, status string) string {
	body := cursorVersion + "\x00" + owner + "\x00" + status + "\x00" + sortKey
	b := binary.BigEndian.AppendUint32([]byte(body), crc32.ChecksumIEEE([]byte(body)))
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(cursor, owner, status string) (string, bool) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(cursor)
	if err != nil || len(b) < 4 {
		return "", false
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return "", false
	}
	parts := strings.Split(string(body), "\x00")
	if len(parts) != 4 || parts[0] != cursorVersion || parts[1] != owner || parts[2] != status || !validSortKey(parts[3]) {
		return "", false
	}
	return parts[3], true
}

func validSortKey(k string) bool {
	ts, id, ok := strings.Cut(k, "#")
	return ok && len(ts) == len(sortTimeLayout) && ValidID(id)
}
