package render

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

// decodeLines decodes JSON lines strictly: each line one object.
func decodeLines[T any](t *testing.T, data []byte) []T {
	t.Helper()
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v T
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decoding %s: %v", sc.Bytes(), err)
		}
		out = append(out, v)
	}
	return out
}

func jsonResults() []proto.HostResult {
	return []proto.HostResult{
		{Host: "web01", Status: proto.StatusOK, PID: 4242, Stdout: []byte("<b>&\n"), Stderr: nil,
			Started: proto.UnixNanoOf(t0), Ended: proto.UnixNanoOf(t0.Add(1234567 * time.Nanosecond))},
		{Host: "web02", Status: proto.StatusFailed, ExitCode: 2, PID: 4243, Stdout: []byte("\xff\xfebinary"), Stderr: []byte("oops\n"),
			Started: proto.UnixNanoOf(t0), Ended: proto.UnixNanoOf(t0.Add(2 * time.Second)), Truncated: true},
		{Host: "web03", Status: proto.StatusTimeout, Signal: "KILL", PID: 4244, Started: proto.UnixNanoOf(t0), Ended: proto.UnixNanoOf(t0.Add(10 * time.Second)), Err: "timed out after 10s", Reason: proto.ReasonCommandTimeout},
		{Host: "web04", Status: proto.StatusUnreachable, Err: "web04: dial tcp: connection refused", Reason: proto.ReasonConnRefused},
	}
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, jsonResults()); err != nil {
		t.Fatal(err)
	}
	golden(t, "json", b.Bytes())
}

func TestJSONSchema(t *testing.T) {
	var b bytes.Buffer
	in := jsonResults()
	if err := WriteJSON(&b, in); err != nil {
		t.Fatal(err)
	}
	got := decodeLines[JSONResult](t, b.Bytes())
	if len(got) != len(in) {
		t.Fatalf("decoded %d objects; want %d", len(got), len(in))
	}
	// Every key but the stdout/stderr pairs is always present.
	for _, m := range decodeLines[map[string]any](t, b.Bytes()) {
		for _, k := range []string{"host", "status", "exit_code", "signal", "pid", "started_at", "ended_at", "duration_ms", "error", "truncated"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%v: key %q missing", m["host"], k)
			}
		}
		_, s := m["stdout"]
		_, sb := m["stdout_b64"]
		if s == sb {
			t.Errorf("%v: stdout present %v, stdout_b64 present %v; want exactly one", m["host"], s, sb)
		}
	}
	for i, j := range got {
		r := in[i]
		if j.Host != r.Host || j.Status != r.Status || j.Truncated != r.Truncated {
			t.Errorf("host/status/truncated = %s/%s/%v; want %s/%s/%v", j.Host, j.Status, j.Truncated, r.Host, r.Status, r.Truncated)
		}
		// Stdout and stderr round-trip, through base64 when not UTF-8.
		for _, p := range []struct {
			name string
			text *string
			b64  []byte
			want []byte
		}{{"stdout", j.Stdout, j.StdoutB64, r.Stdout}, {"stderr", j.Stderr, j.StderrB64, r.Stderr}} {
			var gotb []byte
			if p.text != nil {
				gotb = []byte(*p.text)
			} else {
				gotb = p.b64
			}
			if !bytes.Equal(gotb, p.want) {
				t.Errorf("%s %s = %q; want %q", r.Host, p.name, gotb, p.want)
			}
		}
		if j.StartedAt != nil {
			st, err := time.Parse(time.RFC3339Nano, *j.StartedAt)
			if err != nil || !st.Equal(r.Started.Time()) {
				t.Errorf("%s started_at = %s (%v); want %v", r.Host, *j.StartedAt, err, r.Started)
			}
		} else if r.Started != 0 {
			t.Errorf("%s started_at missing", r.Host)
		}
	}
	if got[0].ExitCode == nil || *got[0].ExitCode != 0 || *got[0].PID != 4242 {
		t.Errorf("web01 exit_code/pid = %v/%v; want 0/4242", got[0].ExitCode, got[0].PID)
	}
	if got[0].DurationMS == nil || *got[0].DurationMS != 1.235 {
		t.Errorf("web01 duration_ms = %v; want 1.235", got[0].DurationMS)
	}
	if got[1].ExitCode == nil || *got[1].ExitCode != 2 || got[1].StdoutB64 == nil {
		t.Errorf("web02 exit_code = %v, stdout_b64 = %q; want 2 and the raw bytes", got[1].ExitCode, got[1].StdoutB64)
	}
	if got[2].ExitCode != nil || got[2].Signal == nil || *got[2].Signal != "SIGKILL" {
		t.Errorf("web03 exit_code = %v, signal = %v; want null, SIGKILL", got[2].ExitCode, got[2].Signal)
	}
	if got[3].ExitCode != nil || got[3].PID != nil || got[3].StartedAt != nil || got[3].DurationMS != nil || *got[3].Error != "dial tcp: connection refused" {
		t.Errorf("web04 = %+v; want nulls and the error", got[3])
	}
	if got[0].Reason != nil || got[3].Reason == nil || *got[3].Reason != "connection_refused" {
		t.Errorf("reasons %v, %v; want null for web01, connection_refused for web04", got[0].Reason, got[3].Reason)
	}
	// The base64 is standard encoding with padding, what `base64 -d` reads.
	raw := bytes.Split(b.Bytes(), []byte("\n"))[1]
	want := base64.StdEncoding.EncodeToString(in[1].Stdout)
	if !bytes.Contains(raw, []byte(`"stdout_b64":"`+want+`"`)) {
		t.Errorf("web02 line %s lacks stdout_b64 %s", raw, want)
	}
}

func TestDurationAndTimeFormat(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	s := optTime(time.Date(2026, 1, 2, 4, 5, 6, 7000, loc))
	if got, want := *s, "2026-01-02T03:05:06.000007000Z"; got != want {
		t.Errorf("optTime = %s; want %s", got, want)
	}
	if d := durationMS(t0, t0.Add(1500*time.Microsecond)); *d != 1.5 {
		t.Errorf("durationMS = %v; want 1.5", *d)
	}
}

// TestJSONDocumented checks that docs/json.md names every key the types write.
func TestJSONDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "json.md"))
	if err != nil {
		t.Fatalf("reading the schema doc: %v", err)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[JSONResult](), reflect.TypeFor[JSONEvent]()} {
		for f := range typ.Fields() {
			key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !bytes.Contains(doc, []byte("`"+key+"`")) {
				t.Errorf("docs/json.md does not document key %q of %s", key, typ.Name())
			}
		}
	}
	for _, st := range summaryOrder {
		if !bytes.Contains(doc, []byte("`"+string(st)+"`")) {
			t.Errorf("docs/json.md does not document status %q", st)
		}
	}
}

// countWriter counts the writes it gets and keeps the largest.
type countWriter struct{ n, max, total int }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n++
	w.max = max(w.max, len(p))
	w.total += len(p)
	return len(p), nil
}

// TestWriteJSONPerObject checks that WriteJSON writes each object as it is made, instead of
// holding every host's output in one buffer first.
func TestWriteJSONPerObject(t *testing.T) {
	big := strings.Repeat("y\n", 1<<16)
	rs := []proto.HostResult{{Host: "a", Status: proto.StatusOK, Stdout: []byte(big)}, {Host: "b", Status: proto.StatusOK, Stdout: []byte(big)}, {Host: "c", Status: proto.StatusOK}}
	var w countWriter
	if err := WriteJSON(&w, rs); err != nil {
		t.Fatal(err)
	}
	if w.n != 3 || w.max >= w.total/2 {
		t.Errorf("%d writes, the largest %d of %d bytes; want 3, each object alone", w.n, w.max, w.total)
	}
}

// TestGatherWritesAsItGoes checks that Gather does not build all groups' output in one buffer.
func TestGatherWritesAsItGoes(t *testing.T) {
	var rs []proto.HostResult
	for i := range 4 {
		rs = append(rs, proto.HostResult{Host: "h" + strconv.Itoa(i), Status: proto.StatusOK, Stdout: []byte(strings.Repeat(strconv.Itoa(i)+"\n", 1<<16))})
	}
	var w countWriter
	if err := Gather(&w, rs, Options{}); err != nil {
		t.Fatal(err)
	}
	if w.max >= w.total/2 {
		t.Errorf("largest write %d of %d bytes; want the groups written in pieces", w.max, w.total)
	}
}
