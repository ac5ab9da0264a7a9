// Package templates holds the example specs that `devbox init --template`
// writes.
package templates

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed *.toml
var files embed.FS

// Default is the template `devbox init` uses when none is named.
const Default = "debian-node"

// Template is one example spec.
type Template struct {
	Name string
	// Description is the template's first line, without its "# ".
	Description string
	Content     []byte
}

// List returns every template, sorted by name.
func List() []Template {
	entries, _ := files.ReadDir(".")
	var out []Template
	for _, e := range entries {
		t, err := Get(strings.TrimSuffix(e.Name(), ".toml"))
		if err == nil {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns the template called name.
func Get(name string) (Template, error) {
	data, err := files.ReadFile(name + ".toml")
	if err != nil {
		var names []string
		for _, t := range List() {
			names = append(names, t.Name)
		}
		return Template{}, fmt.Errorf("no template %q (have: %s)", name, strings.Join(names, ", "))
	}
	first, _, _ := strings.Cut(string(data), "\n")
	return Template{Name: name, Description: strings.TrimPrefix(first, "# "), Content: data}, nil
}
