package proto

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"testing/quick"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestRoundTrip encodes every registered message type with random values and decodes it back.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	qr := newQuickRand(r)
	for _, typ := range Types() {
		t.Run(typ.String(), func(t *testing.T) {
			for i := range 50 {
				body, _ := NewBody(typ)
				rv := reflect.ValueOf(body).Elem()
				v, ok := quick.Value(rv.Type(), qr)
				if !ok {
					t.Fatalf("quick.Value(%v) failed", rv.Type())
				}
				rv.Set(v)
				id := r.Uint64()
				p, err := Encode(typ, id, body)
				if err != nil {
					t.Fatalf("Encode: %v", err)
				}
				var buf bytes.Buffer
				if err := WriteFrame(&buf, p, 0); err != nil {
					t.Fatal(err)
				}
				p2, err := ReadFrame(&buf, 0)
				if err != nil {
					t.Fatal(err)
				}
				env, err := DecodeEnvelope(p2)
				if err != nil {
					t.Fatalf("DecodeEnvelope: %v", err)
				}
				if env.ID != id || env.Type != typ || env.Version != Version {
					t.Fatalf("got envelope %d/%v/%d; want %d/%v/%d", env.ID, env.Type, env.Version, id, typ, Version)
				}
				got, err := env.DecodeBody()
				if err != nil {
					t.Fatalf("iteration %d: DecodeBody: %v", i, err)
				}
				if d := cmp.Diff(body, got, cmpopts.EquateEmpty()); d != "" {
					t.Fatalf("round trip of %v differs (-sent +got):\n%s", typ, d)
				}
			}
		})
	}
}

// quickRand adapts math/rand/v2 to the *rand.Rand testing/quick wants.
func newQuickRand(r *rand.Rand) *oldRand { return newOldRand(int64(r.Uint64())) }

func TestTypeRanges(t *testing.T) {
	for _, typ := range Types() {
		if typ < AgentTypeMin || typ > ClientTypeMax {
			t.Errorf("type %v = %d outside the reserved ranges", typ, typ)
		}
	}
	if TypeError != 20 || TypeHello != 1 || TypeExec != 6 {
		t.Fatal("wire values changed: they must never be reordered")
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering a type twice did not panic")
		}
	}()
	Register(TypeHello, "again", func() any { return new(Hello) })
}

func TestFrameErrors(t *testing.T) {
	// Oversized: the header alone says 1 GiB; it must fail before allocating or reading on.
	hdr := []byte{0x40, 0, 0, 0}
	_, err := ReadFrame(bytes.NewReader(hdr), 0)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized frame: got %v; want ErrFrameTooLarge", err)
	}
	var fse *FrameSizeError
	if !errors.As(err, &fse) || fse.Size != 1<<30 || fse.Max != DefaultMaxFrame {
		t.Fatalf("got %#v; want size 1<<30 and default max", fse)
	}
	// Configurable maximum.
	var buf bytes.Buffer
	WriteFrame(&buf, make([]byte, 100), 0)
	if _, err := ReadFrame(&buf, 99); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("frame over a max of 99: got %v; want ErrFrameTooLarge", err)
	}
	if err := WriteFrame(io.Discard, make([]byte, 100), 99); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("writing over the max: got %v; want ErrFrameTooLarge", err)
	}
	// Clean EOF, truncated header, truncated payload.
	if _, err := ReadFrame(bytes.NewReader(nil), 0); err != io.EOF {
		t.Fatalf("empty stream: got %v; want io.EOF", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0}), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("half a header: got %v; want io.ErrUnexpectedEOF", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 5, 1, 2}), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated payload: got %v; want io.ErrUnexpectedEOF", err)
	}
}

func TestEnvelopeErrors(t *testing.T) {
	p, _ := Encode(Type(200), 7, &Ping{})
	env, err := DecodeEnvelope(p)
	var ute *UnknownTypeError
	if !errors.As(err, &ute) || ute.Type != 200 || env == nil || env.ID != 7 {
		t.Fatalf("unknown type: got %v, %v; want *UnknownTypeError with the envelope", env, err)
	}
	b, _ := Marshal(&Envelope{Version: 99, ID: 3, Type: TypeHello})
	env, err = DecodeEnvelope(b)
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Got != 99 || ve.Want != Version || env.ID != 3 {
		t.Fatalf("version: got %v, %v; want *VersionError with the envelope", env, err)
	}
	for _, bad := range [][]byte{nil, {0xff}, {0xa1, 0x01}, {0x9f, 0xff}, []byte("hello")} {
		if _, err := DecodeEnvelope(bad); err == nil {
			t.Errorf("DecodeEnvelope(%x) succeeded", bad)
		} else {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Errorf("DecodeEnvelope(%x): got %T; want *DecodeError", bad, err)
			}
		}
	}
	// Duplicate map keys are rejected.
	dup := []byte{0xa2, 0x01, 0x01, 0x01, 0x02}
	if _, err := DecodeEnvelope(dup); err == nil {
		t.Error("duplicate map keys accepted")
	}
	// Deep nesting is rejected.
	deep := append(bytes.Repeat([]byte{0x81}, 100), 0x00)
	var v any
	if err := Unmarshal(deep, &v); err == nil {
		t.Error("100 nested arrays accepted")
	}
	// A body of the wrong shape is a DecodeError.
	env = &Envelope{Version: Version, Type: TypeExec, Body: []byte{0x01}}
	var ex Exec
	var de *DecodeError
	if err := env.Decode(&ex); !errors.As(err, &de) {
		t.Errorf("bad body: got %v; want *DecodeError", err)
	}
}

func TestErrorMessage(t *testing.T) {
	var err error = &Error{Code: CodeNotFound, Message: "/x"}
	if got, want := err.Error(), "not found: /x"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// TestConnConcurrentSend checks that concurrent senders never interleave frames.
func TestConnConcurrentSend(t *testing.T) {
	pr, pw := io.Pipe()
	sender := NewConn(nil, pw, ConnOptions{})
	recv := NewConn(pr, nil, ConnOptions{})
	const senders, each = 8, 200
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				data := bytes.Repeat([]byte{byte(s)}, 1000+i)
				if err := sender.Send(uint64(s), TypeOutput, &Output{Stream: Stdout, Data: data, Seq: uint64(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); pw.Close() }()
	next := make([]uint64, senders)
	n := 0
	for {
		env, err := recv.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var o Output
		if err := env.Decode(&o); err != nil {
			t.Fatal(err)
		}
		if o.Seq != next[env.ID] || len(o.Data) != 1000+int(o.Seq) || o.Data[0] != byte(env.ID) {
			t.Fatalf("sender %d: got seq %d len %d; want seq %d", env.ID, o.Seq, len(o.Data), next[env.ID])
		}
		next[env.ID]++
		n++
	}
	if n != senders*each {
		t.Fatalf("got %d messages; want %d", n, senders*each)
	}
}

func TestConnSendTooLarge(t *testing.T) {
	c := NewConn(nil, io.Discard, ConnOptions{MaxFrame: 1000})
	err := c.Send(1, TypeOutput, &Output{Data: make([]byte, 2000)})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v; want ErrFrameTooLarge", err)
	}
	if err := c.Send(2, TypePing, nil); err != nil {
		t.Fatalf("send after a refused message: %v", err)
	}
}

// TestEncodeMatchesMarshal checks that the hand-written envelope head is the CBOR that marshaling
// an Envelope gives.
func TestEncodeMatchesMarshal(t *testing.T) {
	for _, id := range []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1} {
		for _, typ := range []Type{TypePing, TypeExec, 127, 65535} {
			for _, body := range []any{nil, &Ping{}, &Exec{Cmd: "x"}} {
				got, err := Encode(typ, id, body)
				if err != nil {
					t.Fatal(err)
				}
				e := Envelope{Version: Version, ID: id, Type: typ}
				if body != nil {
					e.Body, _ = Marshal(body)
				}
				want, _ := Marshal(&e)
				if !bytes.Equal(got, want) {
					t.Fatalf("Encode(%d, %d, %T) = %x; want %x", typ, id, body, got, want)
				}
			}
		}
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(b []byte) (int, error) {
	w.n++
	return 0, io.ErrClosedPipe
}

func TestConnWriteErrorSticks(t *testing.T) {
	w := &failWriter{}
	c := NewConn(nil, w, ConnOptions{})
	for range 2 {
		if err := c.Send(1, TypePing, nil); !errors.Is(err, ErrClosed) || !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("got %v; want ErrClosed wrapping the write error", err)
		}
	}
	if w.n != 1 {
		t.Fatalf("writer called %d times; want once", w.n)
	}
}
