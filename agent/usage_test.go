package agent

import (
	"testing"
	"time"
)

func TestUsageWindows(t *testing.T) {
	u := newUsageCache()
	t0 := time.Now()
	at := func(d time.Duration, cpu uint64) sampleSet {
		return sampleSet{at: t0.Add(d), cpu: map[string]uint64{"c": cpu}}
	}
	// Nothing kept and no baseline: a second reading is needed.
	if _, ok := u.pick("p", t0, nil); ok {
		t.Fatal("picked a reading from an empty cache")
	}
	// A baseline (the container's start, counters at zero) 5s ago works.
	base := sampleSet{at: t0.Add(-5 * time.Second), cpu: map[string]uint64{}}
	prev, ok := u.pick("p", t0, &base)
	if !ok || !prev.at.Equal(base.at) {
		t.Fatalf("baseline not picked: %v %v", prev, ok)
	}
	// Half a core over those 5 seconds.
	if r := rate(prev, at(0, uint64(2500*time.Millisecond)), "c", time.Time{}); r != 500_000_000 {
		t.Errorf("rate = %dn, want 500000000n (0.5 core)", r)
	}
	u.record("p", at(0, 0))
	u.record("p", at(2*time.Second, 1)) // too soon after the last: not kept
	u.record("p", at(15*time.Second, 2))
	u.record("p", at(30*time.Second, 3))
	// The reading closest to 15s old wins, within [1s, 90s].
	if prev, ok := u.pick("p", t0.Add(45*time.Second), nil); !ok || !prev.at.Equal(t0.Add(30*time.Second)) {
		t.Errorf("picked %v, want the reading of t+30s", prev.at.Sub(t0))
	}
	// Only t+15 (15.5s old) is usable besides t+30 (0.5s, too fresh).
	if prev, ok := u.pick("p", t0.Add(30*time.Second+500*time.Millisecond), nil); !ok || !prev.at.Equal(t0.Add(15*time.Second)) {
		t.Errorf("picked %v, want the reading of t+15s", prev.at.Sub(t0))
	}
	if _, ok := u.pick("p", t0.Add(5*time.Minute), nil); ok {
		t.Error("picked a reading older than 90s")
	}
	// A counter that went backwards (a restarted container) counts from
	// the container's start.
	prev = sampleSet{at: t0, cpu: map[string]uint64{"c": uint64(10 * time.Second)}}
	cur := sampleSet{at: t0.Add(10 * time.Second), cpu: map[string]uint64{"c": uint64(time.Second)}}
	if r := rate(prev, cur, "c", t0.Add(8*time.Second)); r != 500_000_000 {
		t.Errorf("rate after a restart = %dn, want 0.5 core", r)
	}
	u.forget("p")
	if _, ok := u.pick("p", t0.Add(45*time.Second), nil); ok {
		t.Error("forgotten pod still has readings")
	}
}
