package readmetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/secretscan"
	"github.com/apitokens/apitokens/pkg/token"
)

// TestLeakedTokensSection: the README gives GitHub the regular expression the code matches
// tokens with, and names the keys endpoint the code fetches by default.
func TestLeakedTokensSection(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	_, section, ok := strings.Cut(readme, "\n## Leaked tokens\n")
	if !ok {
		t.Fatal("README.md has no section ## Leaked tokens")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, want := range []string{"\n" + token.Pattern(token.DefaultPrefix) + "\n", "`" + secretscan.DefaultKeysURL + "`", "`/leaks`"} {
		if !strings.Contains(section, want) {
			t.Errorf("README.md, Leaked tokens: no %q", want)
		}
	}
}
