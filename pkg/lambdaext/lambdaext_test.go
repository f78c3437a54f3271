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

// TestDrainBefore: without an extension, the final work is done before the handler returns,
// whatever the handler answers: nothing may be left for later.
func TestDrainBefore(t *testing.T) {
	for _, fail := range []bool{false, true} {
		drained, wasFinal := false, false
		h := DrainBefore(func(context.Context, int) (int, error) {
			if drained {
				t.Error("drained before the handler ran")
			}
			if fail {
				return 0, errors.New("boom")
			}
			return 1, nil
		}, func(_ context.Context, final bool) { drained, wasFinal = true, final })
		h(context.Background(), 0)
		if !drained || !wasFinal {
			t.Errorf("fail=%v: returned with drained %v, final %v; want both", fail, drained, wasFinal)
		}
	}
}

// TestWrapPanics: a panicking handler does the final work before the panic goes on.
func TestWrapPanics(t *testing.T) {
	e := &Extension{returned: make(map[string]chan struct{})}
	var final bool
	h := Wrap(e, func(context.Context, int) (int, error) { panic("boom") }, func(_ context.Context, f bool) { final = f })
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic was swallowed")
			}
		}()
		h(context.Background(), 0)
	}()
	if !final {
		t.Error("no final work after a panic")
	}
}
