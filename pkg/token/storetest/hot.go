package storetest

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// Hot is a simulated hot token: Instances enforcement points (token.Limiter, each with its own
// memory, all on one store, each in its own goroutine) serving Requests requests of one token at
// Rate requests per second of simulated time, round robin. Time advances in ticks of 10 ms; in
// each tick every instance serves its share, in parallel with the others, and the tick ends when
// all have answered, so the store sees the instances' writes interleaved as a fleet's would be.
type Hot struct {
	Instances int
	Requests  int
	Rate      float64         // requests per second of simulated time
	Start     time.Time       // simulated time of the first request; zero: the clock's now
	Only      []int           // serve only these instances (nil: all)
	OnTick    func(time.Time) // called at the start of each tick, e.g. to label store calls
}

// HotResult is what a Hot run admitted and wrote.
type HotResult struct {
	Admitted  int64
	Refused   map[string]int64           // by code
	PerWindow map[int64]int64            // admitted per rate-limit window (start, unix seconds)
	Writes    map[string]map[int64]int64 // lease writes (LeaseRate, LeaseQuota, ReturnQuota) per item per simulated second
	End       time.Time                  // simulated time after the last request
}

// MaxWritesPerSecond returns the most lease writes one item took in one simulated second.
func (r HotResult) MaxWritesPerSecond() (item string, second int64, n int64) {
	for it, secs := range r.Writes {
		for s, c := range secs {
			if c > n {
				item, second, n = it, s, c
			}
		}
	}
	return item, second, n
}

// String summarises the result for logs and make measure.
func (r HotResult) String() string {
	item, sec, n := r.MaxWritesPerSecond()
	windows := make([]int64, 0, len(r.PerWindow))
	for w := range r.PerWindow {
		windows = append(windows, w)
	}
	sort.Slice(windows, func(i, j int) bool { return windows[i] < windows[j] })
	s := fmt.Sprintf("admitted %d, refused %v, max lease writes to one item in one second %d (%s, second %d)", r.Admitted, r.Refused, n, item, sec)
	for _, w := range windows {
		s += fmt.Sprintf("; window %d admitted %d", w, r.PerWindow[w])
	}
	return s
}

// leaseCounter counts the lease writes of a store per item and simulated second.
type leaseCounter struct {
	token.Store
	mu     sync.Mutex
	now    time.Time
	writes map[string]map[int64]int64
}

func (c *leaseCounter) count(item string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writes[item] == nil {
		c.writes[item] = make(map[int64]int64)
	}
	c.writes[item][c.now.Unix()]++
}

func (c *leaseCounter) LeaseRate(ctx context.Context, id string, start time.Time, w time.Duration, k int64) (int64, error) {
	c.count("RATE#" + id + "#" + strconv.FormatInt(start.Unix(), 10))
	return c.Store.LeaseRate(ctx, id, start, w, k)
}

func (c *leaseCounter) LeaseQuota(ctx context.Context, id string, rf *token.Refill, at, now time.Time, k int64) (token.QuotaLease, error) {
	c.count("QUOTA#" + id)
	return c.Store.LeaseQuota(ctx, id, rf, at, now, k)
}

func (c *leaseCounter) ReturnQuota(ctx context.Context, id string, period time.Time, n int64) error {
	c.count("QUOTA#" + id)
	return c.Store.ReturnQuota(ctx, id, period, n)
}

// Fleet is a set of instances sharing one store, for Hot runs.
type Fleet struct {
	Limiters []*token.Limiter
	counter  *leaseCounter
}

// NewFleet returns n limiters on s, counting their lease writes.
func NewFleet(s token.Store, n int) *Fleet {
	c := &leaseCounter{Store: s, writes: make(map[string]map[int64]int64)}
	f := &Fleet{counter: c}
	for range n {
		f.Limiters = append(f.Limiters, token.NewLimiter(c, token.LimiterConfig{}))
	}
	return f
}

// ReturnIdle runs every instance's ReturnIdle at now and returns the units returned.
func (f *Fleet) ReturnIdle(tb testing.TB, now time.Time, force bool) int64 {
	tb.Helper()
	var n int64
	for _, l := range f.Limiters {
		f.counter.mu.Lock()
		f.counter.now = now
		f.counter.mu.Unlock()
		n += l.ReturnIdle(context.Background(), now, force)
	}
	return n
}

// Run serves h's requests of t and returns what was admitted and written.
func (f *Fleet) Run(tb testing.TB, t *token.Token, h Hot) HotResult {
	tb.Helper()
	const tick = 10 * time.Millisecond
	res := HotResult{Refused: map[string]int64{}, PerWindow: map[int64]int64{}}
	serve := h.Only
	if serve == nil {
		for i := range f.Limiters {
			serve = append(serve, i)
		}
	}
	var mu sync.Mutex
	var failed error
	next := 0
	for tickStart := h.Start; next < h.Requests; tickStart = tickStart.Add(tick) {
		if h.OnTick != nil {
			h.OnTick(tickStart)
		}
		f.counter.mu.Lock()
		f.counter.now = tickStart
		f.counter.mu.Unlock()
		// The requests whose time falls in this tick, by instance.
		work := make(map[int][]time.Time)
		for ; next < h.Requests; next++ {
			at := h.Start.Add(time.Duration(float64(next) / h.Rate * float64(time.Second)))
			if !at.Before(tickStart.Add(tick)) {
				break
			}
			inst := serve[next%len(serve)]
			work[inst] = append(work[inst], at)
		}
		var wg sync.WaitGroup
		for inst, times := range work {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, at := range times {
					v, err := f.Limiters[inst].Enforce(context.Background(), t, netip.Addr{}, at)
					mu.Lock()
					switch {
					case err != nil:
						failed = err
					case v.Valid():
						res.Admitted++
						if rl := t.RateLimit; rl != nil {
							res.PerWindow[token.WindowStart(at, rl.Window).Unix()]++
						}
					default:
						res.Refused[v.Code]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		res.End = tickStart.Add(tick)
	}
	if failed != nil {
		tb.Fatalf("hot run: %v", failed)
	}
	f.counter.mu.Lock()
	res.Writes = make(map[string]map[int64]int64, len(f.counter.writes))
	for it, secs := range f.counter.writes {
		res.Writes[it] = make(map[int64]int64, len(secs))
		for s, n := range secs {
			res.Writes[it][s] = n
		}
	}
	f.counter.mu.Unlock()
	return res
}
