package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"hash/crc32"
	"unsafe"
)

// A token reads <prefix>_[<env>_]<id><secret><checksum>:
//
//	tok_live_4f9Xa1bC2dE3fG4h<43 secret chars>AbC123
//
// The id is random and not secret: it is the storage key, so a lookup is one read and the
// secret never serves as a key. The secret is 43 base62 characters (256 bits from crypto/rand);
// only its SHA-256 is stored. The checksum is the CRC32 (IEEE) of everything before it, as 6
// base62 characters, so scanners can recognise a token and mistyped ones fail without I/O.
const (
	IDLen       = 16
	SecretLen   = 43
	checksumLen = 6
	bodyLen     = IDLen + SecretLen + checksumLen
	hintIDChars = 6

	// DefaultPrefix is the deployment prefix used when none is configured.
	DefaultPrefix = "tok"
	maxPrefixLen  = 16
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ValidPrefix reports whether p may serve as a deployment prefix: a lowercase letter followed by
// up to 15 lowercase letters or digits.
func ValidPrefix(p string) bool { return prefixSyntax.match(p) }

// ValidEnv reports whether e may serve as an environment label: 1-16 lowercase letters or digits.
func ValidEnv(e string) bool { return envSyntax.match(e) }

// Parsed is a syntactically valid token taken apart. Secret is the plaintext secret: keep it on
// the stack of the call that verifies it.
type Parsed struct {
	Env    string
	ID     string
	Secret string
}

// Parse splits s into its parts if s has the deployment prefix, an optional environment label,
// a body of the right length and alphabet and a matching checksum. It does no I/O and returns
// false for anything else.
func Parse(prefix, s string) (Parsed, bool) {
	n := len(prefix)
	if len(s) < n+1+bodyLen || s[:n] != prefix || s[n] != '_' {
		return Parsed{}, false
	}
	rest := s[n+1:]
	var env string
	if len(rest) > bodyLen {
		i := len(rest) - bodyLen - 1
		if rest[i] != '_' || !isEnv(rest[:i]) {
			return Parsed{}, false
		}
		env = rest[:i]
		rest = rest[i+1:]
	}
	for i := 0; i < bodyLen; i++ {
		if !isBase62(rest[i]) {
			return Parsed{}, false
		}
	}
	sum, ok := decodeChecksum(rest[IDLen+SecretLen:])
	if !ok || sum != checksum(s[:len(s)-checksumLen]) {
		return Parsed{}, false
	}
	return Parsed{Env: env, ID: rest[:IDLen], Secret: rest[IDLen : IDLen+SecretLen]}, true
}

// Format assembles a token from its parts, appending the checksum.
func Format(prefix, env, id, secret string) string {
	b := make([]byte, 0, len(prefix)+len(env)+2+bodyLen)
	b = append(b, prefix...)
	b = append(b, '_')
	if env != "" {
		b = append(b, env...)
		b = append(b, '_')
	}
	b = append(b, id...)
	b = append(b, secret...)
	sum := checksum(string(b))
	var enc [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		enc[i] = base62[sum%62]
		sum /= 62
	}
	return string(append(b, enc[:]...))
}

// Hint returns the non-secret display form of a token: its prefix, environment and the first
// characters of its id, e.g. "tok_live_4f9Xa1...".
func Hint(prefix, env, id string) string {
	if env != "" {
		return prefix + "_" + env + "_" + id[:hintIDChars] + "..."
	}
	return prefix + "_" + id[:hintIDChars] + "..."
}

// HashSecret returns the SHA-256 of a secret: the only form in which a secret is stored.
func HashSecret(secret string) []byte {
	sum := sumSecret(secret)
	return sum[:]
}

// SecretMatches compares the SHA-256 of secret with hash in constant time.
func SecretMatches(secret string, hash []byte) bool {
	sum := sumSecret(secret)
	return subtle.ConstantTimeCompare(sum[:], hash) == 1
}

func sumSecret(secret string) [sha256.Size]byte {
	var buf [64]byte // hashing a stack copy avoids a heap copy of the string
	if len(secret) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], secret)])
	}
	return sha256.Sum256([]byte(secret))
}

// NewID returns a random token id. It panics only if crypto/rand fails, which the Go runtime
// treats as fatal anyway.
func NewID() string { return randomBase62(IDLen) }

// NewSecret returns a random secret of 256 bits or more.
func NewSecret() string { return randomBase62(SecretLen) }

// randomBase62 draws n characters uniformly: bytes >= 248 are rejected so that v%62 is unbiased.
func randomBase62(n int) string {
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		if _, err := rand.Read(buf[:]); err != nil {
			panic("apitokens: crypto/rand failed: " + err.Error())
		}
		for _, v := range buf {
			if v < 248 && len(out) < n {
				out = append(out, base62[v%62])
			}
		}
	}
	return string(out)
}

// ValidID reports whether id has the form of a token id, so that junk ids can be answered
// without a store call.
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isBase62(id[i]) {
			return false
		}
	}
	return true
}

// checksum is the CRC32 (IEEE) of s. It hands crc32 a read-only byte view of the string's
// memory: a []byte(s) copy would escape to the heap on every Parse, and a byte-at-a-time loop
// would forgo the hardware CRC, which keeps rejecting a mistyped token well under 300 ns.
func checksum(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))
}

func decodeChecksum(s string) (uint32, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		v = v*62 + uint64(base62Value(s[i]))
	}
	return uint32(v), v <= 0xffffffff
}

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

func isEnv(s string) bool {
	if len(s) == 0 || len(s) > maxPrefixLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

func base62Value(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'A' <= c && c <= 'Z':
		return c - 'A' + 10
	default:
		return c - 'a' + 36
	}
}
