package lambdaext

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The whole extension under a Runtime API emulator is tested in tools/lambdarun
// (TestExtensionsAPI); these are the failure paths.

func TestRegisterFailures(t *testing.T) {
	if _, err := Register(context.Background(), "", "x"); err == nil {
		t.Error("registered without AWS_LAMBDA_RUNTIME_API")
	}
	for name, h := range map[string]http.HandlerFunc{
		"refused": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) },
		"no id":   func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) },
	} {
		srv := httptest.NewServer(h)
		_, err := Register(context.Background(), strings.TrimPrefix(srv.URL, "http://"), "x")
		srv.Close()
		if err == nil {
			t.Errorf("%s: registered", name)
		}
	}
}

// TestDrainBefore: without an extension, the work is done before the handler returns, whatever
// the handler answers.
func TestDrainBefore(t *testing.T) {
	for _, fail := range []bool{false, true} {
		drained := false
		h := DrainBefore(func(context.Context, int) (int, error) {
			if drained {
				t.Error("drained before the handler ran")
			}
			if fail {
				return 0, errors.New("boom")
			}
			return 1, nil
		}, func() { drained = true })
		h(context.Background(), 0)
		if !drained {
			t.Errorf("fail=%v: returned without draining", fail)
		}
	}
}
