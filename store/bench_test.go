package store

import (
	"fmt"
	"sync/atomic"
	"testing"
)

var value400 = make([]byte, 400)

func benchPut(b *testing.B, writers int, ephemeral bool) {
	s := mustCreate(b, Options{Ephemeral: ephemeral})
	var n atomic.Int64
	b.SetParallelism(writers)
	b.ResetTimer()
	if writers == 1 {
		for i := 0; i < b.N; i++ {
			if _, err := s.Create(fmt.Sprintf("/b/%d", i), value400); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		// SetParallelism multiplies GOMAXPROCS; aim for `writers` goroutines.
		b.SetParallelism((writers + 1) / 2)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Create(fmt.Sprintf("/b/%d", n.Add(1)), value400); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

func BenchmarkPut1(b *testing.B)           { benchPut(b, 1, false) }
func BenchmarkPut32(b *testing.B)          { benchPut(b, 32, false) }
func BenchmarkPut1Ephemeral(b *testing.B)  { benchPut(b, 1, true) }
func BenchmarkPut32Ephemeral(b *testing.B) { benchPut(b, 32, true) }

func BenchmarkGet(b *testing.B) {
	s := mustCreate(b, Options{Ephemeral: true})
	for i := range 1000 {
		if _, err := s.Create(fmt.Sprintf("/g/%d", i), value400); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(fmt.Sprintf("/g/%d", i%1000)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

func BenchmarkWatch(b *testing.B) {
	s := mustCreate(b, Options{Ephemeral: true})
	w, err := s.Watch(b.Context(), "/w/", s.Rev())
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	b.ResetTimer()
	go func() {
		ops := make([]Op, 100)
		for i := 0; i < b.N; i += len(ops) {
			for j := range ops {
				ops[j] = Op{Kind: OpCreate, Key: fmt.Sprintf("/w/%d", i+j), Value: value400}
			}
			if _, err := s.Txn(ops); err != nil {
				return
			}
		}
	}()
	for got := 0; got < b.N; got++ {
		<-w.Events()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
