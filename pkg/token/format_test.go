package token_test

import (
	"bufio"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/token"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// seededBase62 returns n base62 characters from r, so format tests use fixed tokens and cannot
// flake on an unlucky random draw.
func seededBase62(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = base62[r.IntN(len(base62))]
	}
	return string(b)
}

type formatted struct {
	prefix, env, id, secret string
}

func (f formatted) String() string { return token.Format(f.prefix, f.env, f.id, f.secret) }

// sampleTokens returns well-formed tokens of several shapes: default and custom prefix, with and
// without an environment label, the extreme label lengths, the extreme characters of the alphabet.
func sampleTokens() []formatted {
	r := rand.New(rand.NewChaCha8([32]byte{'a', 'p', 'i', 't', 'o', 'k', 'e', 'n', 's'}))
	return []formatted{
		{token.DefaultPrefix, "", seededBase62(r, token.IDLen), seededBase62(r, token.SecretLen)},
		{token.DefaultPrefix, "live", seededBase62(r, token.IDLen), seededBase62(r, token.SecretLen)},
		{token.DefaultPrefix, "test", seededBase62(r, token.IDLen), seededBase62(r, token.SecretLen)},
		{"acme", "x", seededBase62(r, token.IDLen), seededBase62(r, token.SecretLen)},
		{"p", "0123456789abcdef", seededBase62(r, token.IDLen), seededBase62(r, token.SecretLen)},
		{"abcdefghijklmnop", "", strings.Repeat("0", token.IDLen), strings.Repeat("z", token.SecretLen)},
	}
}

func mustParse(tb testing.TB, prefix, s string) token.Parsed {
	tb.Helper()
	p, ok := token.Parse(prefix, s)
	if !ok {
		tb.Fatalf("Parse(%q, %q) rejected a valid token", prefix, s)
	}
	return p
}

func TestFormatParseRoundTrip(t *testing.T) {
	for _, f := range sampleTokens() {
		t.Run(f.prefix+"_"+f.env, func(t *testing.T) {
			s := f.String()
			wantLen := len(f.prefix) + 1 + token.IDLen + token.SecretLen + 6
			if f.env != "" {
				wantLen += len(f.env) + 1
			}
			if len(s) != wantLen {
				t.Fatalf("len(%q) = %d; want %d", s, len(s), wantLen)
			}
			head := f.prefix + "_"
			if f.env != "" {
				head += f.env + "_"
			}
			if !strings.HasPrefix(s, head+f.id+f.secret) {
				t.Fatalf("Format = %q; want it to start with %q", s, head+f.id+f.secret)
			}
			p := mustParse(t, f.prefix, s)
			if p != (token.Parsed{Env: f.env, ID: f.id, Secret: f.secret}) {
				t.Fatalf("Parse(%q) = %+v; want env %q id %q secret %q", s, p, f.env, f.id, f.secret)
			}
		})
	}
	t.Run("fresh id and secret", func(t *testing.T) {
		id, secret := token.NewID(), token.NewSecret()
		p := mustParse(t, "tok", token.Format("tok", "live", id, secret))
		if p.ID != id || p.Secret != secret || p.Env != "live" {
			t.Fatalf("Parse = %+v; want live/%s/%s", p, id, secret)
		}
	})
}

// substitutes are the characters tried at every position: the whole alphabet, the separator and
// a few that never belong in a token.
const substitutes = base62 + "_-.+/= \x00\x7f\xff"

func TestParseRejectsEverySingleSubstitution(t *testing.T) {
	for _, f := range sampleTokens() {
		s := f.String()
		t.Run(s, func(t *testing.T) {
			mustParse(t, f.prefix, s)
			tried := 0
			for i := 0; i < len(s); i++ {
				for j := 0; j < len(substitutes); j++ {
					c := substitutes[j]
					if c == s[i] {
						continue
					}
					mutated := s[:i] + string([]byte{c}) + s[i+1:]
					tried++
					if p, ok := token.Parse(f.prefix, mutated); ok {
						t.Fatalf("Parse accepted %q (position %d changed to %q): %+v", mutated, i, c, p)
					}
				}
			}
			if want := len(s) * (len(substitutes) - 1); tried != want {
				t.Fatalf("tried %d substitutions; want %d", tried, want)
			}
		})
	}
}

func TestParseRejectsEveryAdjacentTransposition(t *testing.T) {
	for _, f := range sampleTokens() {
		s := f.String()
		t.Run(s, func(t *testing.T) {
			mustParse(t, f.prefix, s)
			tried := 0
			for i := 0; i+1 < len(s); i++ {
				if s[i] == s[i+1] {
					continue // swapping equal characters leaves the token as it is
				}
				b := []byte(s)
				b[i], b[i+1] = b[i+1], b[i]
				tried++
				if p, ok := token.Parse(f.prefix, string(b)); ok {
					t.Fatalf("Parse accepted %q (positions %d and %d swapped): %+v", b, i, i+1, p)
				}
			}
			if tried == 0 {
				t.Fatalf("no transposition changed %q", s)
			}
		})
	}
}

// checksumAlias returns s with its checksum re-encoded as checksum + 2^32: six base62 digits hold
// values up to 62^6-1, so a decoder that truncated to 32 bits would accept it.
func checksumAlias(tb testing.TB, s string) string {
	tb.Helper()
	body, sum := s[:len(s)-6], s[len(s)-6:]
	var v uint64
	for i := 0; i < len(sum); i++ {
		v = v*62 + uint64(strings.IndexByte(base62, sum[i]))
	}
	v += 1 << 32
	var enc [6]byte
	for i := len(enc) - 1; i >= 0; i-- {
		enc[i] = base62[v%62]
		v /= 62
	}
	if v != 0 {
		tb.Fatalf("checksum %q + 2^32 does not fit six digits", sum)
	}
	return body + string(enc[:])
}

func TestParseRejects(t *testing.T) {
	id := "4f9Xa1bC2dE3fG4h"
	secret := strings.Repeat("s3cr3t", 8)[:token.SecretLen]
	valid := token.Format("tok", "live", id, secret)
	mustParse(t, "tok", valid)

	tests := []struct {
		name   string
		prefix string
		s      string
	}{
		{"empty", "tok", ""},
		{"prefix only", "tok", "tok_"},
		{"prefix and env only", "tok", "tok_live_"},
		{"other deployment prefix", "acme", valid},
		{"prefix of the prefix", "to", valid},
		{"longer prefix", "toks", valid},
		{"missing separator", "tok", strings.Replace(valid, "tok_", "tok", 1)},
		{"body one short, no env", "tok", token.Format("tok", "", id, secret[1:])},
		{"body one short, env", "tok", token.Format("tok", "live", id, secret[1:])},
		{"body one long, no env", "tok", token.Format("tok", "", id, secret+"A")},
		{"body one long, env", "tok", token.Format("tok", "live", id, secret+"A")},
		{"trailing character", "tok", valid + "A"},
		{"leading space", "tok", " " + valid},
		{"trailing newline", "tok", valid + "\n"},
		{"truncated", "tok", valid[:len(valid)-1]},
		{"checksum dropped", "tok", valid[:len(valid)-6]},
		{"checksum alias above 2^32", "tok", checksumAlias(t, valid)},
		{"checksum all z", "tok", valid[:len(valid)-6] + "zzzzzz"},
		{"secret outside the alphabet", "tok", token.Format("tok", "live", id, secret[:42]+"-")},
		{"id outside the alphabet", "tok", token.Format("tok", "live", "4f9Xa1bC2dE3fG4_", secret)},
		{"non-ASCII in body", "tok", token.Format("tok", "", id[:15]+"é", secret[:42])},
		// Labels below get a valid checksum from Format, so only the label check can reject them.
		{"empty env label", "tok", token.Format("tok", "", "_"+id, secret)},
		{"uppercase env label", "tok", token.Format("tok", "LIVE", id, secret)},
		{"env label of 17", "tok", token.Format("tok", strings.Repeat("a", 17), id, secret)},
		{"env label with dash", "tok", token.Format("tok", "li-ve", id, secret)},
		{"env label with separator", "tok", token.Format("tok", "li_ve", id, secret)},
		{"env label with dot", "tok", token.Format("tok", "v1.2", id, secret)},
		{"env label non-ASCII", "tok", token.Format("tok", "prød", id, secret)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, ok := token.Parse(tt.prefix, tt.s); ok {
				t.Fatalf("Parse(%q, %q) = %+v; want rejection", tt.prefix, tt.s, p)
			}
		})
	}
}

func TestHint(t *testing.T) {
	id := "4f9Xa1bC2dE3fG4h"
	tests := []struct {
		prefix, env, want string
	}{
		{"tok", "live", "tok_live_4f9Xa1..."},
		{"tok", "test", "tok_test_4f9Xa1..."},
		{"tok", "", "tok_4f9Xa1..."},
		{"acme", "dev", "acme_dev_4f9Xa1..."},
	}
	for _, tt := range tests {
		t.Run(tt.prefix+"_"+tt.env, func(t *testing.T) {
			got := token.Hint(tt.prefix, tt.env, id)
			if got != tt.want {
				t.Fatalf("Hint(%q, %q, %q) = %q; want %q", tt.prefix, tt.env, id, got, tt.want)
			}
			// The hint is the start of the token itself, and nothing of the secret.
			s := token.Format(tt.prefix, tt.env, id, strings.Repeat("S", token.SecretLen))
			if stem := strings.TrimSuffix(got, "..."); !strings.HasPrefix(s, stem) || strings.Contains(stem, "S") {
				t.Fatalf("hint %q is not a secret-free start of %q", got, s)
			}
		})
	}
}

func TestHashSecretIsSHA256(t *testing.T) {
	// FIPS 180-2 test vectors, including one longer than a SHA-256 block.
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"448 bits", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
		{"896 bits", "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu", "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hex.EncodeToString(token.HashSecret(tt.in)); got != tt.want {
				t.Fatalf("HashSecret(%q) = %s; want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestSecretMatches(t *testing.T) {
	secret := token.NewSecret()
	hash := token.HashSecret(secret)
	tests := []struct {
		name   string
		secret string
		hash   []byte
		want   bool
	}{
		{"same secret", secret, hash, true},
		{"other secret", token.NewSecret(), hash, false},
		{"one character changed", secret[:42] + string(base62[(strings.IndexByte(base62, secret[42])+1)%62]), hash, false},
		{"prefix of the secret", secret[:42], hash, false},
		{"empty secret", "", hash, false},
		{"nil hash", secret, nil, false},
		{"truncated hash", secret, hash[:31], false},
		{"the hash itself as secret", string(hash), hash, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := token.SecretMatches(tt.secret, tt.hash); got != tt.want {
				t.Fatalf("SecretMatches = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	const n = 4000
	seen := make(map[string]bool, n)
	counts := make(map[byte]int)
	for range n {
		s := token.NewSecret()
		// 43 base62 characters carry 43*log2(62) = 256.03 bits.
		if len(s) != 43 {
			t.Fatalf("len(NewSecret()) = %d; want 43", len(s))
		}
		for i := 0; i < len(s); i++ {
			if strings.IndexByte(base62, s[i]) < 0 {
				t.Fatalf("NewSecret() = %q: %q is not base62", s, s[i])
			}
			counts[s[i]]++
		}
		if seen[s] {
			t.Fatalf("NewSecret() returned %q twice", s)
		}
		seen[s] = true
	}
	// Uniformity: 172,000 draws give each character about 2774 ± 52; a modulo-biased generator
	// would give eight of them 25% more.
	mean := float64(n*43) / 62
	if len(counts) != 62 {
		t.Fatalf("secrets use %d distinct characters; want all 62", len(counts))
	}
	for c, k := range counts {
		if float64(k) > 1.12*mean || float64(k) < 0.88*mean {
			t.Fatalf("character %q drawn %d times; want about %.0f", c, k, mean)
		}
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"4f9Xa1bC2dE3fG4h", true},
		{"0000000000000000", true},
		{"zzzzzzzzzzzzzzzz", true},
		{token.NewID(), true},
		{"", false},
		{"4f9Xa1bC2dE3fG4", false},
		{"4f9Xa1bC2dE3fG4hX", false},
		{"4f9Xa1bC2dE3fG4_", false},
		{"4f9Xa1bC2dE3fG4-", false},
		{"4f9Xa1bC2dE3f/4h", false},
		{"4f9Xa1bC2dE3fé4", false},
		{"4f9Xa1bC 2dE3fG4", false},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.id), func(t *testing.T) {
			if got := token.ValidID(tt.id); got != tt.want {
				t.Fatalf("ValidID(%q) = %v; want %v", tt.id, got, tt.want)
			}
		})
	}
	t.Run("NewID", func(t *testing.T) {
		a, b := token.NewID(), token.NewID()
		if !token.ValidID(a) || a == b {
			t.Fatalf("NewID() = %q then %q; want two different valid ids", a, b)
		}
	})
}

func TestValidPrefixAndEnv(t *testing.T) {
	tests := []struct {
		s           string
		prefix, env bool
	}{
		{"tok", true, true},
		{"a", true, true},
		{"abcdefghijklmnop", true, true},
		{"abcdefghijklmnopq", false, false},
		{"live2", true, true},
		{"2live", false, true},
		{"", false, false},
		{"Tok", false, false},
		{"to_k", false, false},
		{"to-k", false, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.s), func(t *testing.T) {
			if got := token.ValidPrefix(tt.s); got != tt.prefix {
				t.Errorf("ValidPrefix(%q) = %v; want %v", tt.s, got, tt.prefix)
			}
			if got := token.ValidEnv(tt.s); got != tt.env {
				t.Errorf("ValidEnv(%q) = %v; want %v", tt.s, got, tt.env)
			}
		})
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts is exactly the token its
// parts format to: no second spelling of a token gets through.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := token.Parse(token.DefaultPrefix, s)
		if !ok {
			if p != (token.Parsed{}) {
				t.Fatalf("Parse(%q) rejected it but returned %+v", s, p)
			}
			return
		}
		if got := token.Format(token.DefaultPrefix, p.Env, p.ID, p.Secret); got != s {
			t.Fatalf("Parse accepted %q but its parts format to %q", s, got)
		}
		if !token.ValidID(p.ID) || len(p.Secret) != token.SecretLen || p.Env != "" && !token.ValidEnv(p.Env) {
			t.Fatalf("Parse(%q) = %+v: a part is malformed", s, p)
		}
	})
}

// TestFuzzCorpusValidSeeds keeps the checked-in seeds honest: the ones named valid-* must parse,
// so the fuzzer starts from the accepting path and not only from rejections.
func TestFuzzCorpusValidSeeds(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "valid-*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no valid-* seeds in testdata/fuzz/FuzzParse (err %v)", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			mustParse(t, token.DefaultPrefix, readStringSeed(t, path))
		})
	}
}

// readStringSeed reads a one-string seed file in the "go test fuzz v1" format.
func readStringSeed(tb testing.TB, path string) string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") || !strings.HasSuffix(lines[1], ")") {
		tb.Fatalf("%s: not a one-string seed: %q", path, lines)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return s
}
