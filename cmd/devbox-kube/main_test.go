package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRun: an environment becomes its objects; one with a field this
// helper does not know (a newer devbox's) is refused, not written without
// it.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(strings.NewReader(`{"Name":"web","Image":"r.example/web@sha256:00","HostKey":"a2V5"}`), &out); err != nil || !strings.Contains(out.String(), "kind: Secret") {
		t.Errorf("run: %v\n%s", err, out.String())
	}
	err := run(strings.NewReader(`{"Name":"web","Sidecars":[]}`), &out)
	if err == nil || !strings.Contains(err.Error(), `unknown field "Sidecars"`) {
		t.Errorf("an unknown field: %v", err)
	}
}
