package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// The Lambda Extensions API, version 2020-01-01, as documented in
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html, for the extensions
// a function registers from its own process (internal extensions; external ones would be
// separate executables under /opt/extensions, which lambdarun does not start).
//
// What it changes for a run: init ends once the runtime and every registered extension have
// asked for their next event; an invocation's event goes to the runtime and to every extension
// subscribed to INVOKE; the caller has the answer when the runtime posts it, but the next
// invocation starts only once each such extension has asked for its next event again (Lambda
// bills that time as the post-runtime extension duration).
const extensionPrefix = "/2020-01-01/extension"

const (
	headerExtensionName = "Lambda-Extension-Name"
	headerExtensionID   = "Lambda-Extension-Identifier"
)

// extension is one registered extension.
type extension struct {
	id, name string
	invoke   bool          // subscribed to INVOKE (the only event an internal extension can take)
	events   chan []byte   // the next event for it
	ready    chan struct{} // closed by its first event/next: its init is done
	once     sync.Once

	mu          sync.Mutex
	outstanding chan struct{} // closed when it asks for its next event after the last one
}

// extensions serves the Extensions API next to the Runtime API.
type extensions struct {
	functionName string

	mu     sync.Mutex
	list   []*extension
	closed bool // init is over: registering is refused
}

func (x *extensions) register(w http.ResponseWriter, r *http.Request) {
	name := r.Header.Get(headerExtensionName)
	var body struct {
		Events []string `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil || name == "" {
		writeStatus(w, http.StatusBadRequest, "InvalidRequest", "want a "+headerExtensionName+" header and a JSON body {\"events\": [...]}")
		return
	}
	for _, ev := range body.Events {
		switch ev {
		case "INVOKE":
		case "SHUTDOWN":
			// Every extension here registers from the function's process: an internal one,
			// which Lambda does not let subscribe to SHUTDOWN (it gets SIGTERM instead).
			writeStatus(w, http.StatusBadRequest, "ShutdownEventNotSupportedForInternalExtension", "internal extensions cannot register for SHUTDOWN")
			return
		default:
			writeStatus(w, http.StatusBadRequest, "InvalidEventType", fmt.Sprintf("unknown event type %q", ev))
			return
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		// Internal extensions must register before the runtime's first invocation/next.
		writeStatus(w, http.StatusForbidden, "InvalidStateTransition", "register after init")
		return
	}
	e := &extension{
		id: newRequestID(), name: name, invoke: slices.Contains(body.Events, "INVOKE"),
		events: make(chan []byte, 1), ready: make(chan struct{}),
	}
	x.list = append(x.list, e)
	w.Header().Set(headerExtensionID, e.id)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"functionName": x.functionName, "functionVersion": "$LATEST", "handler": "bootstrap"})
}

func (x *extensions) find(id string) *extension {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, e := range x.list {
		if e.id == id {
			return e
		}
	}
	return nil
}

// next tells that the extension is done with its last event, then blocks until its next one.
func (x *extensions) next(w http.ResponseWriter, r *http.Request) {
	e := x.find(r.Header.Get(headerExtensionID))
	if e == nil {
		writeStatus(w, http.StatusForbidden, "Extension.UnknownExtensionIdentifier", "unknown "+headerExtensionID)
		return
	}
	e.once.Do(func() { close(e.ready) })
	e.mu.Lock()
	if e.outstanding != nil {
		close(e.outstanding)
		e.outstanding = nil
	}
	e.mu.Unlock()
	select {
	case ev := <-e.events:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Lambda-Extension-Event-Identifier", newRequestID())
		w.Write(ev)
	case <-r.Context().Done():
	}
}

// closeInit ends registration and returns the extensions that registered.
func (x *extensions) closeInit() []*extension {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.closed = true
	return slices.Clone(x.list)
}

// waitReady waits until every extension has asked for its first event, or until the deadline;
// it returns when the last one did.
func waitReady(list []*extension, deadline <-chan time.Time) (time.Time, bool) {
	for _, e := range list {
		select {
		case <-e.ready:
		case <-deadline:
			return time.Time{}, false
		}
	}
	return time.Now(), true
}

// deliver hands inv's INVOKE event to every extension subscribed to it and returns a channel
// closed once all of them have asked for their next event again.
func deliver(list []*extension, inv *invocation, functionARN string) <-chan struct{} {
	var chans []chan struct{}
	ev, _ := json.Marshal(map[string]any{
		"eventType": "INVOKE", "requestId": inv.id, "deadlineMs": inv.deadline.UnixMilli(),
		"invokedFunctionArn": functionARN,
		"tracing":            map[string]string{"type": "X-Amzn-Trace-Id", "value": newTraceID()},
	})
	for _, e := range list {
		if !e.invoke {
			continue
		}
		c := make(chan struct{})
		e.mu.Lock()
		e.outstanding = c
		e.mu.Unlock()
		e.events <- ev
		chans = append(chans, c)
	}
	all := make(chan struct{})
	go func() {
		for _, c := range chans {
			<-c
		}
		close(all)
	}()
	return all
}
