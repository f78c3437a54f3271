package token

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultUsageBufferSize is the most tokens a UsageBuffer holds by default.
const DefaultUsageBufferSize = 10000

// flushConcurrency bounds the usage writes one Flush has in flight; a forced flush (at SIGTERM,
// with 500 ms to live) may have finalFlushConcurrency.
const (
	flushConcurrency      = 16
	finalFlushConcurrency = 64
)

// UsageBufferConfig tunes a UsageBuffer.
type UsageBufferConfig struct {
	// Interval is the least time between two usage writes of one token by this buffer (0: every
	// outcome is due at once); with Buffered, between two flushes that write.
	Interval time.Duration
	// Buffered only counts outcomes: Add never finds a write due, and Flush writes every token's
	// counts at most once per Interval (a Lambda function, which runs Flush alongside each
	// invocation and forced at SIGTERM). Off, a token's counts are due when it was never written
	// by this buffer, or Interval has passed since (a server, or a one-shot command).
	Buffered bool
	// Size is the most tokens held (DefaultUsageBufferSize when not positive). Full, tokens with
	// nothing pending whose interval has passed are forgotten; then, unbuffered, an outcome of
	// another token is due at once and keeps no entry, and buffered, the next Flush writes
	// whatever the interval. Counts of failed writes are kept up to twice Size tokens.
	Size int
	// WriteTimeout bounds each usage write; 0: none beyond the caller's context.
	WriteTimeout time.Duration
	Logger       *slog.Logger     // nil: slog.Default()
	Now          func() time.Time // Flush's clock; nil: time.Now
}

// UsageBuffer counts the outcomes of tokens (valid uses, refusals by code) that one instance
// (a server, a Lambda execution environment) decided, and writes them with Store.RecordUse at
// most once per interval per token, so that a hot token's item takes a handful of writes per
// minute whatever its traffic. A token's write carries every use counted since the last one
// (usageCount grows by all of them, lastUsedAt is the last one's time), and its refusals, for
// the day's counters. What the buffer holds reaches the store with the token's next write, or
// the next Flush: usageCount is exact up to what instances still buffer, at most one interval's
// worth per instance, which an instance that crashes loses. A failed write keeps its counts for
// the next one, so nothing is lost or counted twice. Safe for concurrent use.
type UsageBuffer struct {
	store Store
	cfg   UsageBufferConfig

	mu        sync.Mutex
	tokens    map[string]*usageEntry
	lastFlush time.Time // the last Flush that wrote; under mu

	flushMu sync.Mutex // one Flush at a time
}

// usageEntry is what a buffer counted of one token and has not written yet.
type usageEntry struct {
	pending   int64            // valid uses
	refused   map[string]int64 // refusals by code (RefusalCodes); nil when none
	last      time.Time        // the last valid use: the lastUsedAt a write of pending records
	seen      time.Time        // the last use or refusal: the day a write counts them for
	lastWrite time.Time        // zero: never written by this buffer
}

// empty reports whether e has nothing to write.
func (e *usageEntry) empty() bool { return e.pending == 0 && len(e.refused) == 0 }

// usage returns e's counts as one usage write.
func (e *usageEntry) usage() Usage {
	at := e.last
	if e.pending == 0 {
		at = e.seen
	}
	var refused map[string]int64
	if len(e.refused) > 0 {
		refused = make(map[string]int64, len(e.refused))
		for code, n := range e.refused {
			refused[code] = n
		}
	}
	return Usage{At: at, Valid: e.pending, Refused: refused}
}

// take returns e's counts as one usage write and clears them.
func (e *usageEntry) take() Usage {
	w := e.usage()
	e.pending, e.refused = 0, nil
	return w
}

// count adds one outcome at now.
func (e *usageEntry) count(code string, now time.Time) {
	if code == CodeValid {
		e.pending++
		if now.After(e.last) {
			e.last = now
		}
	} else {
		if e.refused == nil {
			e.refused = make(map[string]int64)
		}
		e.refused[code]++
	}
	if now.After(e.seen) {
		e.seen = now
	}
}

// add puts the counts of w back into e (a write that failed).
func (e *usageEntry) add(w Usage) {
	e.pending += w.Valid
	for code, n := range w.Refused {
		if e.refused == nil {
			e.refused = make(map[string]int64)
		}
		e.refused[code] += n
	}
	if w.Valid > 0 && w.At.After(e.last) {
		e.last = w.At
	}
	if w.At.After(e.seen) {
		e.seen = w.At
	}
}

// NewUsageBuffer returns a buffer writing to store.
func NewUsageBuffer(store Store, cfg UsageBufferConfig) *UsageBuffer {
	if cfg.Size <= 0 {
		cfg.Size = DefaultUsageBufferSize
	}
	if cfg.Interval < 0 {
		cfg.Interval = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &UsageBuffer{store: store, cfg: cfg, tokens: make(map[string]*usageEntry)}
}

// Add counts one outcome of token id at now: code CodeValid for a valid use, otherwise one of
// RefusalCodes (callers count only tokens whose secret matched, so that junk never writes). It
// returns held, the valid uses of the token this buffer holds unwritten, this one included, and,
// when the token's counts are due (unbuffered: never written by this buffer, or Interval has
// passed since its last write), them all as the usage write w, taken from the buffer, for the
// caller to pass to Write.
func (b *UsageBuffer) Add(id, code string, now time.Time) (held int64, w Usage, due bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.tokens[id]
	if !ok {
		if len(b.tokens) >= b.cfg.Size {
			b.prune(now)
		}
		if len(b.tokens) >= b.cfg.Size && !b.cfg.Buffered {
			// Full of tokens written within the interval: this outcome goes out alone, at once,
			// rather than grow the buffer.
			e = &usageEntry{}
			e.count(code, now)
			w = e.take()
			return w.Valid, w, true
		}
		e = &usageEntry{}
		b.tokens[id] = e
	}
	e.count(code, now)
	if b.cfg.Buffered || !e.lastWrite.IsZero() && now.Sub(e.lastWrite) < b.cfg.Interval {
		return e.pending, Usage{}, false
	}
	e.lastWrite = now
	w = e.take()
	return w.Valid, w, true
}

// Write sends w, a usage write of token id that Add returned, bounded by WriteTimeout and not
// by the cancellation of ctx (the caller's request may be answered and gone). A failed write is
// logged and its counts kept for the token's next write, and its error returned. A token the
// store no longer holds (purged since it was read) has nothing left to count: its counts are
// dropped, and Write returns nil.
func (b *UsageBuffer) Write(ctx context.Context, id string, w Usage) error {
	kept, err := b.write(ctx, id, w)
	if err != nil {
		b.cfg.Logger.WarnContext(ctx, "usage write failed", "tokenId", id, "uses", w.Valid, "refused", w.Refused, "kept", kept, "error", err)
	}
	return err
}

// write is Write without the log, and reports whether a failed write's counts were kept.
func (b *UsageBuffer) write(ctx context.Context, id string, w Usage) (kept bool, err error) {
	ctx = context.WithoutCancel(ctx)
	if b.cfg.WriteTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.WriteTimeout)
		defer cancel()
	}
	err = b.store.RecordUse(ctx, id, w)
	if err == nil || ErrorCode(err) == ENOTFOUND {
		return false, nil
	}
	return b.keep(id, w), err
}

// Flush writes what the buffer holds, one usage write per token (at most flushConcurrency at a
// time, finalFlushConcurrency when forced, each bounded by WriteTimeout), with the time of the
// token's last use, and returns once they are answered. It writes only when force is set, when
// Interval has passed since it last wrote (the first call always writes), or when the buffer
// holds Size tokens; otherwise it returns at once. So each token's item takes at most one usage
// write per interval per instance. A failed write keeps its counts for the next flush. Flushes
// run one at a time. It returns the number of tokens written or attempted.
func (b *UsageBuffer) Flush(ctx context.Context, force bool) int {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	now := b.cfg.Now()
	type batch struct {
		id string
		w  Usage
	}
	b.mu.Lock()
	if !force && !b.lastFlush.IsZero() && now.Sub(b.lastFlush) < b.cfg.Interval && len(b.tokens) < b.cfg.Size {
		b.mu.Unlock()
		return 0
	}
	b.lastFlush = now
	var due []batch
	for id, e := range b.tokens {
		if !e.empty() {
			due = append(due, batch{id, e.take()})
		}
		delete(b.tokens, id) // an outcome after this starts a new entry
	}
	b.mu.Unlock()

	limit := flushConcurrency
	if force {
		limit = finalFlushConcurrency
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	var failed struct {
		sync.Mutex
		n, lost int
		first   error
	}
	for _, d := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			kept, err := b.write(ctx, d.id, d.w)
			if err == nil {
				return
			}
			failed.Lock()
			defer failed.Unlock()
			if failed.n++; failed.first == nil {
				failed.first = err
			}
			if !kept {
				failed.lost++
			}
		}()
	}
	wg.Wait()
	if failed.n > 0 {
		b.cfg.Logger.WarnContext(ctx, "usage writes failed; their counts are kept for the next flush", "tokens", failed.n, "dropped", failed.lost, "error", failed.first)
	}
	return len(due)
}

// Held returns what the buffer holds of token id and has not written (a zero Usage when
// nothing), so that a read through this instance can show the stored counters plus these.
func (b *UsageBuffer) Held(id string) Usage {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.tokens[id]; ok {
		return e.usage()
	}
	return Usage{}
}

// keep puts back the counts of a write that failed into the token's entry (a new one if a flush
// or a prune removed it since), and reports whether it could: with twice Size tokens held, they
// are dropped rather than grow the buffer without bound while the store fails.
func (b *UsageBuffer) keep(id string, w Usage) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.tokens[id]
	if !ok {
		if len(b.tokens) >= 2*b.cfg.Size {
			return false
		}
		e = &usageEntry{}
		b.tokens[id] = e
	}
	e.add(w)
	return true
}

// prune forgets tokens with nothing pending whose interval has passed. b.mu must be held.
func (b *UsageBuffer) prune(now time.Time) {
	for id, e := range b.tokens {
		if e.empty() && now.Sub(e.lastWrite) >= b.cfg.Interval {
			delete(b.tokens, id)
		}
	}
}
