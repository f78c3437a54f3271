package lambdaext

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// Start under a Runtime API emulator (registration, SIGTERM) is tested in tools/lambdarun
// (TestExtensionsAPI, TestShutdownWork).

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

// TestAlongside: the work runs while the handler does (each waits for the other to start), and
// the answer waits for the work, whatever the handler answers.
func TestAlongside(t *testing.T) {
	for _, fail := range []bool{false, true} {
		started := make(chan struct{})
		var done atomic.Bool
		var gotFinal atomic.Bool
		h := Alongside(func(context.Context, int) (int, error) {
			<-started // the work has started before the handler returns: they overlap
			if fail {
				return 0, errors.New("boom")
			}
			return 1, nil
		}, func(_ context.Context, final bool) {
			close(started)
			gotFinal.Store(final)
			done.Store(true)
		}, true)
		h(context.Background(), 0)
		if !done.Load() || !gotFinal.Load() {
			t.Errorf("fail=%v: answered before the work was done (done %v, final %v)", fail, done.Load(), gotFinal.Load())
		}
	}
}

// TestAlongsidePanics: a panicking handler does the final work before the panic goes on.
func TestAlongsidePanics(t *testing.T) {
	var finals atomic.Int32
	h := Alongside(func(context.Context, int) (int, error) { panic("boom") }, func(_ context.Context, final bool) {
		if final {
			finals.Add(1)
		}
	}, false)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic was swallowed")
			}
		}()
		h(context.Background(), 0)
	}()
	if finals.Load() != 1 {
		t.Errorf("%d final works after a panic; want 1", finals.Load())
	}
}
