package proto

import (
	"bytes"
	"io"
	"testing"
)

func benchOutput(size int) *Output {
	return &Output{Stream: Stdout, Data: bytes.Repeat([]byte("x"), size), Seq: 12345}
}

func BenchmarkEncodeFrame(b *testing.B) {
	for _, size := range []int{64, 32 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			c := NewConn(nil, io.Discard, ConnOptions{})
			o := benchOutput(size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Send(99, TypeOutput, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	for _, size := range []int{64, 32 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			p, _ := Encode(TypeOutput, 99, benchOutput(size))
			frame, _ := AppendFrame(nil, p, 0)
			r := bytes.NewReader(frame)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(frame)
				pl, err := ReadFrame(r, 0)
				if err != nil {
					b.Fatal(err)
				}
				env, err := DecodeEnvelope(pl)
				if err != nil {
					b.Fatal(err)
				}
				var o Output
				if err := env.Decode(&o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1024 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
