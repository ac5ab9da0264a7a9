package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/devbox/devbox/devenv/lock"
	"github.com/devbox/devbox/devenv/spec"
	"github.com/devbox/devbox/internal/safetext"
	"github.com/devbox/devbox/rootfs"
)

// portableNames maps CentOS package names to their apt and apk names, so
// that a spec written for CentOS installs the same toolchain on Debian,
// Ubuntu or Alpine. Names not here pass through unchanged.
var portableNames = map[string]struct{ apt, apk string }{
	"gcc":             {"gcc", "gcc"},
	"gcc-c++":         {"g++", "g++"},
	"make":            {"make", "make"},
	"perl":            {"perl", "perl"},
	"tar":             {"tar", "tar"},
	"curl":            {"curl", "curl"},
	"wget":            {"wget", "wget"},
	"unzip":           {"unzip", "unzip"},
	"git":             {"git", "git"},
	"vim":             {"vim", "vim"},
	"which":           {"debianutils", "which"},
	"xz":              {"xz-utils", "xz"},
	"procps-ng":       {"procps", "procps"},
	"openssh-clients": {"openssh-client", "openssh-client"},
	"zlib":            {"zlib1g", "zlib"},
	"zlib-devel":      {"zlib1g-dev", "zlib-dev"},
	"pcre-devel":      {"libpcre3-dev", "pcre-dev"},
	"openssl-devel":   {"libssl-dev", "openssl-dev"},
	"libffi-devel":    {"libffi-dev", "libffi-dev"},
	"readline-devel":  {"libreadline-dev", "readline-dev"},
	"bzip2-devel":     {"libbz2-dev", "bzip2-dev"},
	"sqlite-devel":    {"libsqlite3-dev", "sqlite-dev"},
	"ncurses-devel":   {"libncurses-dev", "ncurses-dev"},
	"libcurl-devel":   {"libcurl4-openssl-dev", "curl-dev"},
	"libxml2-devel":   {"libxml2-dev", "libxml2-dev"},
	"python3-devel":   {"python3-dev", "python3-dev"},
}

// translatePackages maps names for manager and returns one line per name
// it changed, for the build to print.
func translatePackages(manager string, names []string) (out []string, notes []string) {
	for _, n := range names {
		t, ok := portableNames[n]
		to := n
		switch {
		case ok && manager == "apt":
			to = t.apt
		case ok && manager == "apk":
			to = t.apk
		}
		if to != n {
			notes = append(notes, fmt.Sprintf("%s -> %s (%s)", n, to, manager))
		}
		out = append(out, to)
	}
	return out, notes
}

// managerBinaries says how to recognise each package manager in a root
// file system, in the order they are tried.
var managerBinaries = []struct{ manager, path string }{
	{"apt", "usr/bin/apt-get"},
	{"dnf", "usr/bin/dnf"},
	{"yum", "usr/bin/yum"},
	{"apk", "sbin/apk"},
	{"zypper", "usr/bin/zypper"},
}

// detectManager finds the package manager in a stack of layers (top first).
func detectManager(layers []string) (string, error) {
	for _, m := range managerBinaries {
		if existsInLayers(layers, m.path) {
			return m.manager, nil
		}
	}
	return "", fmt.Errorf("no package manager (apt-get, dnf, yum, apk, zypper) in the base; set [packages] manager")
}

// existsInLayers reports whether rel exists in the merged view of layers;
// on usr-merged bases /sbin is a link to usr/sbin, so that is tried too.
func existsInLayers(layers []string, rel string) bool {
	if rootfs.LayersHave(layers, rel) {
		return true
	}
	if strings.HasPrefix(rel, "sbin/") {
		return rootfs.LayersHave(layers, "usr/"+rel)
	}
	return false
}

// packageScript is the shell script that installs names with manager,
// non-interactively, cleaning the manager's caches in the same step.
// closure is the lock's whole set (NAME=VERSION), which apt installs
// dependencies from (aptPins); the other managers get the requested names
// pinned, and the build checks the rest afterwards (checkInstalled).
func packageScript(manager string, names, closure []string, centosVault bool) string {
	list := strings.Join(names, " ")
	switch manager {
	case "apt":
		pins, opts := "", ""
		if len(closure) > 0 {
			pins = "cat > " + aptPinsFile + " <<'DEVBOX_PINS'\n" + aptPins(closure) + "DEVBOX_PINS\n"
			opts = "-o Dir::Etc::Preferences=" + aptPinsFile + " --allow-downgrades "
		}
		return "set -e; " + pins + "export DEBIAN_FRONTEND=noninteractive; apt-get update -q; apt-get install -y -q --no-install-recommends " + opts + list + "; apt-get clean; rm -rf /var/lib/apt/lists/* " + aptPinsFile
	case "dnf":
		return "set -e; dnf install -y " + list + "; dnf clean all"
	case "yum":
		s := "set -e; "
		if centosVault {
			s += centos7Vault + "; "
		}
		return s + "yum install -y " + list + "; yum clean all; rm -rf /var/cache/yum"
	case "apk":
		return "set -e; apk add --no-cache " + list
	case "zypper":
		return "set -e; zypper --non-interactive install " + list + "; zypper clean -a"
	}
	return "echo unknown package manager " + manager + "; exit 1"
}

// centos7Vault points CentOS 7's repositories at vault.centos.org: the
// distribution is end-of-life and mirrorlist.centos.org is gone.
const centos7Vault = `if grep -q 'release 7' /etc/centos-release 2>/dev/null; then sed -i -e 's|^mirrorlist=|#mirrorlist=|' -e 's|^#\?baseurl=http://mirror.centos.org|baseurl=http://vault.centos.org|' /etc/yum.repos.d/CentOS-*.repo; fi`

// installedFile is where the packages step's script leaves the list of
// installed packages, read and removed from the layer afterwards.
const installedFile = ".devbox-installed"

// installedBeforeFile is where it leaves the list of what was installed
// before it ran.
const installedBeforeFile = ".devbox-installed-before"

// installedQuery is the shell command that writes every installed package
// as NAME=VERSION, one a line, to path.
func installedQuery(manager, path string) string {
	switch manager {
	case "apt":
		return "dpkg-query -W -f '${Package}=${Version}\\n' > " + path
	case "apk":
		// apk prints NAME-VERSION-rN; the version is what follows the
		// last dash that precedes a digit.
		return "apk info -v 2>/dev/null | sed -E 's/-([0-9][^-]*-r[0-9]+)$/=\\1/' > " + path
	}
	return "rpm -qa --qf '%{NAME}=%{VERSION}-%{RELEASE}\\n' > " + path
}

// aptPinsFile is where a locked apt install reads its pins from, inside
// the build container; the step removes it.
const aptPinsFile = "/.devbox-apt-pins"

// aptPins is an apt preferences file that holds every package of closure
// (NAME=VERSION) at its version, above any other version (priority
// 1001, which also allows a downgrade): the dependencies apt resolves are
// the lock's, not the archive's newest.
func aptPins(closure []string) string {
	var b strings.Builder
	for _, nv := range closure {
		if !lock.ValidPackage(nv) {
			continue // read from a lock, which refuses it: never in a script
		}
		n, v, _ := strings.Cut(nv, "=")
		fmt.Fprintf(&b, "Package: %s\nPin: version %s\nPin-Priority: 1001\n\n", n, v)
	}
	return b.String()
}

// checkInstalled compares what a locked packages step installed or
// changed (installed, less what was there before) with the lock's set,
// and fails naming each package that is not at its recorded version: a
// version the archive no longer has is never replaced by another one in
// silence. The base's own packages, which the step left alone, are the
// base's (a debootstrap: base differs from one machine to the next).
func checkInstalled(installed, before, locked []string) error {
	want := versions(locked)
	var diffs []string
	for _, nv := range installed {
		if slices.Contains(before, nv) {
			continue
		}
		n, v, _ := strings.Cut(nv, "=")
		switch w, ok := want[n]; {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: installed %s, which %s does not record", n, v, lock.FileName))
		case w != v:
			diffs = append(diffs, fmt.Sprintf("%s: %s pins %s, installed %s", n, lock.FileName, w, v))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("the packages installed are not the set %s records (is a recorded version gone from the archive? `devbox lock --update` resolves afresh):\n  %s",
		lock.FileName, strings.Join(diffs, "\n  "))
}

// versions maps NAME=VERSION lines by name.
func versions(list []string) map[string]string {
	m := map[string]string{}
	for _, nv := range list {
		if n, v, ok := strings.Cut(nv, "="); ok {
			m[n] = v
		}
	}
	return m
}

// pinVersions adds to each name the version the lock pins for it, in the
// manager's syntax: apt pkg=version, dnf and yum pkg-version, apk and
// zypper pkg=version.
func pinVersions(manager string, names []string, pins *lock.File) []string {
	if pins == nil || pins.Packages == nil || pins.Packages.Manager != manager {
		return names
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n
		if v, ok := pins.Installed(n); ok {
			sep := "="
			if manager == "dnf" || manager == "yum" {
				sep = "-"
			}
			out[i] = n + sep + v
		}
	}
	return out
}

// packagesStep installs the spec's packages, each at the version the lock
// pins, and returns what the manager then reports installed.
func packagesStep(ctx context.Context, s *spec.Spec, b *Result, tmp string, pins *lock.File, o Options) (map[string]string, error) {
	manager := s.Packages.Manager
	if manager == "auto" {
		var err error
		if manager, err = detectManager(b.Lower); err != nil {
			return nil, err
		}
	}
	names, notes := translatePackages(manager, s.Packages.Install)
	for _, n := range notes {
		o.Log("  " + n)
	}
	names = pinVersions(manager, names, pins)
	var closure []string
	if pins != nil && pins.Packages != nil && pins.Packages.Manager == manager {
		closure = pins.Packages.Installed
	}
	vault := s.Packages.CentOSVault == nil || *s.Packages.CentOSVault
	script := "set -e; " + installedQuery(manager, "/"+installedBeforeFile) + "; " +
		packageScript(manager, names, closure, vault) + "; " + installedQuery(manager, "/"+installedFile)
	if err := runInBuild(ctx, s, b, tmp, []string{"/bin/sh", "-c", script}, nil, o); err != nil {
		return nil, err
	}
	before, err := takeList(filepath.Join(tmp, "upper", installedBeforeFile))
	if err != nil {
		return nil, err
	}
	installed, err := takeList(filepath.Join(tmp, "upper", installedFile))
	if err != nil {
		return nil, err
	}
	if closure != nil {
		if err := checkInstalled(installed, before, closure); err != nil {
			return nil, err
		}
	}
	var skipped []string
	installed = slices.DeleteFunc(installed, func(nv string) bool {
		bad := !lock.ValidPackage(nv)
		if bad {
			skipped = append(skipped, nv)
		}
		return bad
	})
	if len(skipped) > 0 {
		o.Log(fmt.Sprintf("  not recorded in %s (not NAME=VERSION): %s", lock.FileName, safetext.Escape(strings.Join(skipped, " "))))
	}
	return map[string]string{resManager: manager, resInstalled: strings.Join(installed, "\n")}, nil
}

// takeList reads and removes a list a step's script left in its layer,
// one word a line, sorted.
func takeList(p string) ([]string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("installed packages: %w", err)
	}
	os.Remove(p)
	list := strings.Fields(string(data))
	sort.Strings(list)
	return list, nil
}
