package store

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var errCorrupt = errors.New("corrupt record")

func revKey(rev int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(rev))
	return b[:]
}

// encodeRecord: createRev | modRev | value.
func encodeRecord(kv KV) []byte {
	b := make([]byte, 16+len(kv.Value))
	binary.BigEndian.PutUint64(b, uint64(kv.CreateRev))
	binary.BigEndian.PutUint64(b[8:], uint64(kv.ModRev))
	copy(b[16:], kv.Value)
	return b
}

func decodeRecord(key string, b []byte) (*KV, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("key %q: %w", key, errCorrupt)
	}
	v := make([]byte, len(b)-16) // bbolt memory is only valid inside the tx
	copy(v, b[16:])
	return &KV{
		Key:       key,
		CreateRev: int64(binary.BigEndian.Uint64(b)),
		ModRev:    int64(binary.BigEndian.Uint64(b[8:])),
		Value:     v,
	}, nil
}

// encodeEvent: type | key | value | createRev | modRev | hasPrev [| prev createRev | prev modRev | prev value].
func encodeEvent(ev Event) []byte {
	b := make([]byte, 0, 32+len(ev.KV.Key)+len(ev.KV.Value))
	b = append(b, byte(ev.Type))
	b = binary.AppendUvarint(b, uint64(len(ev.KV.Key)))
	b = append(b, ev.KV.Key...)
	b = binary.AppendUvarint(b, uint64(len(ev.KV.Value)))
	b = append(b, ev.KV.Value...)
	b = binary.AppendUvarint(b, uint64(ev.KV.CreateRev))
	b = binary.AppendUvarint(b, uint64(ev.KV.ModRev))
	if ev.PrevKV == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(ev.PrevKV.CreateRev))
	b = binary.AppendUvarint(b, uint64(ev.PrevKV.ModRev))
	b = binary.AppendUvarint(b, uint64(len(ev.PrevKV.Value)))
	return append(b, ev.PrevKV.Value...)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errCorrupt
		return nil
	}
	v := make([]byte, n)
	copy(v, r.b[:n])
	r.b = r.b[n:]
	return v
}

func (r *reader) byte1() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errCorrupt
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func decodeEvent(b []byte) (Event, error) {
	r := &reader{b: b}
	var ev Event
	ev.Type = EventType(r.byte1())
	ev.KV.Key = string(r.bytes())
	ev.KV.Value = r.bytes()
	ev.KV.CreateRev = int64(r.uvarint())
	ev.KV.ModRev = int64(r.uvarint())
	if r.byte1() == 1 {
		prev := KV{Key: ev.KV.Key}
		prev.CreateRev = int64(r.uvarint())
		prev.ModRev = int64(r.uvarint())
		prev.Value = r.bytes()
		ev.PrevKV = &prev
	}
	if r.err != nil {
		return Event{}, fmt.Errorf("decode event: %w", r.err)
	}
	return ev, nil
}
