package proto

import (
	"bytes"
	"testing"
)

// TestChunkFastMatchesGeneral checks that the copy-free decoding of WriteChunk and Output gives
// what the general decoder gives, at every length encoding of the data.
func TestChunkFastMatchesGeneral(t *testing.T) {
	for _, n := range []int{0, 1, 23, 24, 255, 256, 65535, 65536, 1 << 20} {
		data := bytes.Repeat([]byte{0xab}, n)
		for _, v := range []any{&WriteChunk{Data: data}, &Output{Stream: Stderr, Data: data}} {
			b, err := Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var stream *uint64
			if _, ok := v.(*Output); ok {
				stream = new(uint64)
			}
			got, ok := decodeChunkFast(b, stream)
			if !ok || !bytes.Equal(got, data) {
				t.Fatalf("%T with %d bytes: fast decode ok=%v, %d bytes", v, n, ok, len(got))
			}
			if stream != nil && *stream != uint64(Stderr) {
				t.Errorf("Output stream %d; want %d", *stream, Stderr)
			}
		}
	}
	// Not the shape Marshal writes: left to the general decoder.
	for _, b := range [][]byte{
		{0xa1, 0x01, 0x5f, 0x41, 0x00, 0xff},                               // indefinite-length byte string
		{0xa1, 0x01, 0x42, 0x00},                                           // shorter than its length
		{0xa1, 0x01, 0x41, 0x00, 0x00},                                     // trailing byte
		{0xa1, 0x02, 0x41, 0x00},                                           // another key
		{0xa1, 0x01, 0x61, 0x61},                                           // a text string
		{0xa1, 0x01, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // absurd length
	} {
		if _, ok := decodeChunkFast(b, nil); ok {
			t.Errorf("fast decode accepted % x", b)
		}
	}
}

// FuzzChunkFast checks that whenever the fast path accepts a body, the general decoder reads
// the same data from it.
func FuzzChunkFast(f *testing.F) {
	for _, v := range []any{&WriteChunk{Data: []byte("abc")}, &Output{Stream: Stdout, Data: []byte("x")}} {
		b, _ := Marshal(v)
		_, isOutput := v.(*Output)
		f.Add(b, isOutput)
	}
	f.Add([]byte{0xa1, 0x01, 0x40}, false)
	f.Fuzz(func(t *testing.T, b []byte, output bool) {
		if output {
			var st uint64
			got, ok := decodeChunkFast(b, &st)
			var want Output
			// Decode takes the fast path only for a stream that fits a uint8.
			if ok && st <= 0xff && (decMode.Unmarshal(b, &want) != nil || !bytes.Equal(want.Data, got) || uint64(want.Stream) != st) {
				t.Fatalf("fast decode of % x: stream %d data %x; general: %+v", b, st, got, want)
			}
			return
		}
		got, ok := decodeChunkFast(b, nil)
		var want WriteChunk
		if ok && (decMode.Unmarshal(b, &want) != nil || !bytes.Equal(want.Data, got)) {
			t.Fatalf("fast decode of % x: %x; general: %x", b, got, want.Data)
		}
	})
}
