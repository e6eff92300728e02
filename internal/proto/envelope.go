package proto

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Decoding limits applied to every envelope and body.
const (
	MaxNestedLevels  = 16
	MaxArrayElements = 1 << 20
	MaxMapPairs      = 1 << 16
)

// DecOptions returns the CBOR decoding options shoal uses: bounded nesting, array and map sizes,
// duplicate map keys rejected, no indefinite lengths, no tags, valid UTF-8 only.
func DecOptions() cbor.DecOptions {
	return cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  MaxNestedLevels,
		MaxArrayElements: MaxArrayElements,
		MaxMapPairs:      MaxMapPairs,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
	}
}

var (
	decMode cbor.DecMode
	encMode cbor.UserBufferEncMode
)

func init() {
	var err error
	if decMode, err = DecOptions().DecMode(); err != nil {
		panic(fmt.Sprintf("proto: cbor decoding options: %v", err))
	}
	if encMode, err = (cbor.EncOptions{IndefLength: cbor.IndefLengthForbidden, TagsMd: cbor.TagsForbidden}).UserBufferEncMode(); err != nil {
		panic(fmt.Sprintf("proto: cbor encoding options: %v", err))
	}
}

// Envelope is the outer layer of every frame's payload.
type Envelope struct {
	Version uint16          `cbor:"1,keyasint"`
	ID      uint64          `cbor:"2,keyasint"`
	Type    Type            `cbor:"3,keyasint"`
	Body    cbor.RawMessage `cbor:"4,keyasint,omitempty"`
}

// Marshal encodes v with shoal's CBOR options.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes data into v with shoal's CBOR limits.
func Unmarshal(data []byte, v any) error { return decMode.Unmarshal(data, v) }

// UnmarshalFirst decodes the first CBOR data item of data into v with the package's decode limits
// and returns the bytes after it.
func UnmarshalFirst(data []byte, v any) (rest []byte, err error) {
	return decMode.UnmarshalFirst(data, v)
}

// Encode returns the payload (without the frame header) of a message of type t with id and body.
// A nil body encodes as an empty body.
func Encode(t Type, id uint64, body any) ([]byte, error) {
	var buf bytes.Buffer
	if err := encodeTo(&buf, t, id, body); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// encodeTo appends the envelope of a message to buf. It writes the envelope's head by hand and the
// body straight after it, so the body is encoded once and never copied; the result is the same
// CBOR map that marshaling an Envelope gives.
func encodeTo(buf *bytes.Buffer, t Type, id uint64, body any) error {
	var head [32]byte
	h := head[:0]
	if body == nil {
		h = append(h, 0xa3) // map of 3 pairs
	} else {
		h = append(h, 0xa4) // map of 4 pairs
	}
	h = appendUint(append(h, 0x01), uint64(Version))
	h = appendUint(append(h, 0x02), id)
	h = appendUint(append(h, 0x03), uint64(t))
	if body != nil {
		h = append(h, 0x04)
	}
	buf.Write(h)
	if body == nil {
		return nil
	}
	if err := encMode.MarshalToBuffer(body, buf); err != nil {
		return fmt.Errorf("encoding %s body: %w", t, err)
	}
	return nil
}

// appendUint appends v as a CBOR unsigned integer (major type 0) in its shortest form.
func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 24:
		return append(b, byte(v))
	case v <= 0xff:
		return append(b, 0x18, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0x19), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, 0x1a), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0x1b), v)
}

// DecodeEnvelope decodes a frame payload into an envelope. It checks the version and the type:
// on a mismatch it returns the decoded envelope together with a *VersionError or an
// *UnknownTypeError, so the caller can still answer the id. Any other failure is a *DecodeError
// and a nil envelope.
func DecodeEnvelope(payload []byte) (*Envelope, error) {
	e, ok := decodeEnvelopeFast(payload)
	if !ok {
		e = new(Envelope)
		if err := decMode.Unmarshal(payload, e); err != nil {
			return nil, &DecodeError{What: "envelope", Err: err}
		}
	}
	if e.Version != Version {
		return e, &VersionError{Got: e.Version, Want: Version}
	}
	if !e.Type.Known() {
		return e, &UnknownTypeError{Type: e.Type}
	}
	return e, nil
}

// Decode decodes the body of e into v, a pointer to the body struct. An empty body leaves v zero.
func (e *Envelope) Decode(v any) error {
	if len(e.Body) == 0 {
		return nil
	}
	switch b := v.(type) {
	case *WriteChunk:
		if data, ok := decodeChunkFast(e.Body, nil); ok {
			*b = WriteChunk{Data: data}
			return nil
		}
	case *Output:
		var stream uint64
		if data, ok := decodeChunkFast(e.Body, &stream); ok && stream <= 0xff {
			*b = Output{Stream: uint8(stream), Data: data}
			return nil
		}
	}
	if err := decMode.Unmarshal(e.Body, v); err != nil {
		return &DecodeError{What: e.Type.String(), Err: err}
	}
	return nil
}

// decodeChunkFast decodes the two bodies that carry bulk data, as Marshal writes them, without
// copying the data: a WriteChunk {1: bytes} (stream nil) or an Output {1: stream, 2: bytes}.
// The data returned is a slice of p. Anything else (other key orders, indefinite lengths,
// trailing bytes) reports false, for the general decoder.
func decodeChunkFast(p []byte, stream *uint64) ([]byte, bool) {
	i, key := 1, byte(1)
	if stream == nil {
		if len(p) < 3 || p[0] != 0xa1 || p[1] != 1 {
			return nil, false
		}
		i = 2
	} else {
		if len(p) < 4 || p[0] != 0xa2 || p[1] != 1 {
			return nil, false
		}
		v, n, ok := readUint(p[2:])
		if !ok {
			return nil, false
		}
		*stream = v
		i, key = 2+n, 2
		if i >= len(p) || p[i] != key {
			return nil, false
		}
		i++
	}
	if i >= len(p) || p[i]>>5 != 2 {
		return nil, false
	}
	// A byte string's length is read as an unsigned integer with the major type cleared.
	hdr := []byte{p[i] & 0x1f}
	hdr = append(hdr, p[i+1:min(len(p), i+9)]...)
	n, w, ok := readUint(hdr)
	if !ok || uint64(len(p)-i-w) != n {
		return nil, false
	}
	return p[i+w:], true
}

// DecodeBody decodes the body of e into a new value of the registered body type, returned as a pointer.
func (e *Envelope) DecodeBody() (any, error) {
	v, err := NewBody(e.Type)
	if err != nil {
		return nil, err
	}
	if err := e.Decode(v); err != nil {
		return nil, err
	}
	return v, nil
}

// decodeEnvelopeFast decodes the envelope shape Encode writes (a map of keys 1, 2, 3 and maybe 4,
// in order, with integer values) without copying the body: Body is a slice of payload, checked
// to be exactly one well-formed item. Anything else reports false, for the general decoder.
func decodeEnvelopeFast(p []byte) (*Envelope, bool) {
	if len(p) < 7 || (p[0] != 0xa3 && p[0] != 0xa4) {
		return nil, false
	}
	i := 1
	var vals [3]uint64
	for k := range vals {
		if i >= len(p) || p[i] != byte(k+1) {
			return nil, false
		}
		v, n, ok := readUint(p[i+1:])
		if !ok {
			return nil, false
		}
		vals[k] = v
		i += 1 + n
	}
	if vals[0] > 0xffff || vals[2] > 0xffff {
		return nil, false
	}
	e := &Envelope{Version: uint16(vals[0]), ID: vals[1], Type: Type(vals[2])}
	if p[0] == 0xa3 {
		return e, i == len(p)
	}
	if i >= len(p) || p[i] != 0x04 {
		return nil, false
	}
	body := p[i+1:]
	if decMode.Wellformed(body) != nil {
		return nil, false
	}
	e.Body = body
	return e, true
}

// readUint reads a CBOR unsigned integer (major type 0) and returns it with its length.
func readUint(b []byte) (v uint64, n int, ok bool) {
	if len(b) == 0 || b[0]>>5 != 0 {
		return 0, 0, false
	}
	switch ai := b[0] & 0x1f; {
	case ai < 24:
		return uint64(ai), 1, true
	case ai == 24 && len(b) >= 2:
		return uint64(b[1]), 2, true
	case ai == 25 && len(b) >= 3:
		return uint64(binary.BigEndian.Uint16(b[1:])), 3, true
	case ai == 26 && len(b) >= 5:
		return uint64(binary.BigEndian.Uint32(b[1:])), 5, true
	case ai == 27 && len(b) >= 9:
		return binary.BigEndian.Uint64(b[1:]), 9, true
	}
	return 0, 0, false
}
