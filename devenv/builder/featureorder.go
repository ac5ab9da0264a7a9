package builder

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// Features install in the Dev Container CLI's order
// (computeDependsOnInstallationOrder in its
// src/spec-configuration/containerFeaturesOrder.ts): in rounds, each
// round every feature whose dependsOn and installsAfter are installed,
// sorted by compareFeatures; the file's order plays no part.

// resource is how a feature is named in another's installsAfter and
// dependsOn: a registry reference without tag or digest, or a local
// folder's path (an entry "./x" is resolved against the folder of the
// devcontainer.json, as the CLI's processFeature resolves the file's own).
func resource(ref, configDir string) string {
	if strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../") {
		return "path:" + filepath.Join(configDir, ref)
	}
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return strings.ToLower(ref)
}

// resource is f's own.
func (f *Feature) resource(configDir string) string {
	if f.Dir != "" {
		return "path:" + filepath.Clean(f.Dir)
	}
	return resource(f.Ref, configDir)
}

// orderFeatures sorts fs in the CLI's install order; a dependsOn that no
// feature of fs satisfies, or a cycle, is an error.
func orderFeatures(fs []*Feature, configDir string) ([]*Feature, error) {
	byRes := map[string]*Feature{}
	for _, f := range fs {
		byRes[f.resource(configDir)] = f
	}
	for _, f := range fs {
		for dep := range f.Meta.DependsOn {
			if byRes[resource(dep, configDir)] == nil {
				return nil, fmt.Errorf("feature %s depends on %s: add it to features", f.Ref, dep)
			}
		}
	}
	var out []*Feature
	done := map[*Feature]bool{}
	for len(out) < len(fs) {
		var round []*Feature
		for _, f := range fs {
			if !done[f] && ready(f, byRes, done, configDir) {
				round = append(round, f)
			}
		}
		if len(round) == 0 {
			return nil, fmt.Errorf("features depend on one another in a cycle")
		}
		slices.SortStableFunc(round, compareFeatures)
		for _, f := range round {
			done[f] = true
		}
		out = append(out, round...)
	}
	return out, nil
}

// ready says every feature f comes after is installed.
func ready(f *Feature, byRes map[string]*Feature, done map[*Feature]bool, configDir string) bool {
	after := slices.Collect(maps.Keys(f.Meta.DependsOn))
	for _, a := range append(after, f.Meta.InstallsAfter...) {
		if g := byRes[resource(a, configDir)]; g != nil && g != f && !done[g] {
			return false
		}
	}
	return true
}

// compareFeatures orders the features of one round as the CLI's
// compareTo: a local and a registry one by their names in the file; two
// local ones by path; two registry ones by registry and namespace, id,
// tag, options and digest.
func compareFeatures(a, b *Feature) int {
	if (a.Dir != "") != (b.Dir != "") {
		return collate(a.Ref, b.Ref)
	}
	if a.Dir != "" {
		return cmp.Or(collate(filepath.Clean(a.Dir), filepath.Clean(b.Dir)), compareOptions(a, b))
	}
	ra, rb := splitRef(a.Ref), splitRef(b.Ref)
	c := cmp.Or(collate(ra[0], rb[0]), collate(ra[1], rb[1]))
	if c == 0 && ra[2] != "" && rb[2] != "" {
		c = collate(ra[2], rb[2])
	}
	return cmp.Or(c, compareOptions(a, b), strings.Compare(a.Digest, b.Digest))
}

// splitRef is a registry reference's registry and namespace, id and tag.
func splitRef(ref string) [3]string {
	ref, _, _ = strings.Cut(ref, "@")
	var tag string
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref, tag = ref[:i], ref[i+1:]
	}
	i := strings.LastIndex(ref, "/")
	return [3]string{strings.ToLower(ref[:max(i, 0)]), strings.ToLower(ref[i+1:]), tag}
}

// compareOptions orders two features' options as the CLI's
// optionsCompareTo: fewer first, then by sorted name and value.
func compareOptions(a, b *Feature) int {
	if c := cmp.Compare(len(a.Options), len(b.Options)); c != 0 {
		return c
	}
	ka, kb := slices.Sorted(maps.Keys(a.Options)), slices.Sorted(maps.Keys(b.Options))
	for i := range ka {
		if c := cmp.Or(collate(ka[i], kb[i]), collate(a.Options[ka[i]], b.Options[kb[i]])); c != 0 {
			return c
		}
	}
	return 0
}

// icuPunct is the ASCII punctuation and symbols in the order of ICU's
// root collation (CLDR), all of which come before digits and letters.
const icuPunct = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"

// collate compares as JavaScript's localeCompare does under ICU's root
// collation, for the ASCII of references and paths: punctuation and
// symbols (in icuPunct's order) before digits before letters, letters
// without case first, a lower-case letter before its capital only to
// break a tie.
func collate(a, b string) int {
	class := func(r rune) (int, rune) {
		switch {
		case unicode.IsDigit(r):
			return 1, r
		case unicode.IsLetter(r):
			return 2, unicode.ToLower(r)
		}
		if i := strings.IndexRune(icuPunct, r); i >= 0 {
			return 0, rune(i)
		}
		return 0, r + 128 // other symbols after the listed ones
	}
	ra, rb := []rune(a), []rune(b)
	for i := 0; i < len(ra) && i < len(rb); i++ {
		ca, va := class(ra[i])
		cb, vb := class(rb[i])
		if c := cmp.Or(cmp.Compare(ca, cb), cmp.Compare(va, vb)); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(len(ra), len(rb)); c != 0 {
		return c
	}
	// Case breaks the tie: lower-case first, as ICU's tertiary level.
	return -strings.Compare(a, b)
}
