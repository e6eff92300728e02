package proto

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestReasonsDocumented checks that docs/json.md's Reason table and docs/json.schema.json's
// $defs/reason name every Reason, with the status it gives, and nothing else.
func TestReasonsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	for r := range reasons {
		if r == "" {
			continue
		}
		row := "| `" + string(r) + "` | `" + string(r.Status()) + "` |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/json.md has no row %q", row)
		}
	}
	b, err := os.ReadFile("../../docs/json.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs struct {
			Reason struct {
				Enum []*string `json:"enum"`
			} `json:"reason"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, v := range schema.Defs.Reason.Enum {
		if v != nil {
			got = append(got, *v)
		}
	}
	for r := range reasons {
		if r != "" {
			want = append(want, string(r))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("json.schema.json's reasons are %v; want %v", got, want)
	}
}

// TestReasonPhrases pins the words of the messages, which predate the reasons.
func TestReasonPhrases(t *testing.T) {
	for r, want := range map[Reason]string{"": "error", ReasonConnRefused: "refused", ReasonBusy: "refused",
		ReasonHostKeyChanged: "host key changed", ReasonAuthFailed: "auth failed", "new_reason": "new_reason"} {
		if got := r.Phrase(); got != want {
			t.Errorf("%q.Phrase() = %q; want %q", r, got, want)
		}
	}
	if got := Reason("new_reason").Status(); got != StatusError {
		t.Errorf("an unknown reason gives %s; want error", got)
	}
}
