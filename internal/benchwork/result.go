package benchwork

import (
	"sort"
	"time"
)

// Result is one workload measured on one engine.
type Result struct {
	Workload string `json:"workload"` // a workload id, see Workloads
	Engine   string `json:"engine"`
	Run      int    `json:"run"` // which run of the suite (0-based); -1 after aggregation

	Ops       int64   `json:"ops,omitempty"`  // operations done
	Unit      string  `json:"unit,omitempty"` // what one op is: key, commit, scan, value
	Seconds   float64 `json:"seconds,omitempty"`
	OpsPerSec float64 `json:"ops_per_sec,omitempty"`
	MBPerSec  float64 `json:"mb_per_sec,omitempty"` // key+value bytes moved per second (MB = 1e6 bytes)

	// Latency percentiles, in microseconds, of LatencyOf (a commit, a
	// transaction of a batch, one scan).
	P50       float64 `json:"p50_us,omitempty"`
	P99       float64 `json:"p99_us,omitempty"`
	LatencyOf string  `json:"latency_of,omitempty"`

	// Size rows: the data file's bytes against the key+value bytes stored.
	FileBytes    int64   `json:"file_bytes,omitempty"`
	PayloadBytes int64   `json:"payload_bytes,omitempty"`
	Amp          float64 `json:"space_amplification,omitempty"`

	// Heap row: the largest runtime.MemStats.HeapAlloc seen.
	HeapPeak uint64 `json:"heap_peak_bytes,omitempty"`

	Note string `json:"note,omitempty"`
}

// Value is the figure a row is judged by: ops/s for speed rows, the
// amplification for size rows, the heap peak for heap rows.
func (r Result) Value() float64 {
	switch {
	case r.OpsPerSec > 0:
		return r.OpsPerSec
	case r.Amp > 0:
		return r.Amp
	}
	return float64(r.HeapPeak)
}

// timing collects latencies of one workload.
type timing struct {
	start time.Time
	lat   []time.Duration
}

func startTiming(n int) *timing {
	return &timing{start: time.Now(), lat: make([]time.Duration, 0, n)}
}

// result fills in the speed fields for ops operations of bytes bytes.
func (t *timing) result(workload, engine, unit, latOf string, ops, bytes int64) Result {
	el := time.Since(t.start).Seconds()
	r := Result{Workload: workload, Engine: engine, Ops: ops, Unit: unit, Seconds: el, LatencyOf: latOf}
	if el > 0 {
		r.OpsPerSec = float64(ops) / el
		r.MBPerSec = float64(bytes) / el / 1e6
	}
	r.P50, r.P99 = percentiles(t.lat)
	return r
}

// percentiles returns the 50th and 99th percentiles in microseconds.
func percentiles(lat []time.Duration) (p50, p99 float64) {
	if len(lat) == 0 {
		return 0, 0
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) float64 {
		i := int(q * float64(len(s)-1))
		return float64(s[i]) / float64(time.Microsecond)
	}
	return at(0.50), at(0.99)
}
