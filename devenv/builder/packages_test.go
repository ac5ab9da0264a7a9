package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// standIn makes a root file system with just the given files, like a
// CentOS, Rocky, Alpine or openSUSE base as far as detection goes.
func standIn(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o755)
	}
	return root
}

func TestDetectManager(t *testing.T) {
	cases := map[string][]string{
		"apt":    {"usr/bin/apt-get", "usr/bin/dpkg"},
		"dnf":    {"usr/bin/dnf", "usr/bin/yum"}, // Rocky 9 has both; dnf wins
		"yum":    {"usr/bin/yum", "etc/centos-release"},
		"apk":    {"sbin/apk"},
		"zypper": {"usr/bin/zypper"},
	}
	for want, files := range cases {
		got, err := detectManager([]string{standIn(t, files...)})
		if err != nil || got != want {
			t.Errorf("%v: %q, %v; want %s", files, got, err, want)
		}
	}
	// usr-merged Alpine-likes, and a whiteout in an upper layer.
	if got, _ := detectManager([]string{standIn(t, "usr/sbin/apk")}); got != "apk" {
		t.Errorf("usr/sbin/apk: %q", got)
	}
	if _, err := detectManager([]string{standIn(t, "bin/sh")}); err == nil || !strings.Contains(err.Error(), "no package manager") {
		t.Errorf("no manager: %v", err)
	}
}

func TestTranslatePackages(t *testing.T) {
	in := []string{"gcc", "gcc-c++", "pcre-devel", "openssl-devel", "zlib-devel", "zlib", "procps-ng", "custom-thing"}
	apt, notes := translatePackages("apt", in)
	want := []string{"gcc", "g++", "libpcre3-dev", "libssl-dev", "zlib1g-dev", "zlib1g", "procps", "custom-thing"}
	if strings.Join(apt, " ") != strings.Join(want, " ") {
		t.Errorf("apt: %v", apt)
	}
	if len(notes) != 6 || notes[0] != "gcc-c++ -> g++ (apt)" {
		t.Errorf("notes: %q", notes)
	}
	apk, _ := translatePackages("apk", in)
	if strings.Join(apk, " ") != "gcc g++ pcre-dev openssl-dev zlib-dev zlib procps custom-thing" {
		t.Errorf("apk: %v", apk)
	}
	yum, notes := translatePackages("yum", in)
	if strings.Join(yum, " ") != strings.Join(in, " ") || len(notes) != 0 {
		t.Errorf("yum changed names: %v %v", yum, notes)
	}
	// Every name of the list has a mapping.
	for _, n := range []string{"gcc-c++", "pcre-devel", "openssl-devel", "zlib-devel", "zlib", "libffi-devel", "readline-devel", "bzip2-devel", "sqlite-devel", "ncurses-devel", "libcurl-devel", "libxml2-devel", "python3-devel", "openssh-clients", "which", "xz", "procps-ng", "vim", "git", "make", "perl", "gcc", "tar", "curl", "wget", "unzip"} {
		if _, ok := portableNames[n]; !ok {
			t.Errorf("no mapping for %s", n)
		}
	}
}

func TestPackageScripts(t *testing.T) {
	pk := []string{"gcc", "make"}
	cases := map[string][]string{
		"apt":    {"DEBIAN_FRONTEND=noninteractive", "apt-get update", "apt-get install -y -q --no-install-recommends gcc make", "rm -rf /var/lib/apt/lists/*"},
		"dnf":    {"dnf install -y gcc make", "dnf clean all"},
		"yum":    {"vault.centos.org", "yum install -y gcc make", "yum clean all"},
		"apk":    {"apk add --no-cache gcc make"},
		"zypper": {"zypper --non-interactive install gcc make", "zypper clean -a"},
	}
	for m, wants := range cases {
		s := packageScript(m, pk, nil, true)
		for _, w := range wants {
			if !strings.Contains(s, w) {
				t.Errorf("%s script %q lacks %q", m, s, w)
			}
		}
		if !strings.HasPrefix(s, "set -e;") {
			t.Errorf("%s script does not stop at the first error: %q", m, s)
		}
	}
	if strings.Contains(packageScript("yum", pk, nil, false), "vault") {
		t.Error("centos_vault = false still rewrites the repositories")
	}
}

func TestResolveVersion(t *testing.T) {
	vs := []string{"12.9.1", "12.10.0", "20.1.0", "20.18.0", "20.9.0", "21.0.0-rc.1", "22.1.0"}
	for want, in := range map[string]string{"12.9.1": "12.9.1", "20.18.0": "20", "22.1.0": "*"} {
		if got, err := resolveVersion(in, vs); err != nil || got != want {
			t.Errorf("resolveVersion(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"12.9.2", "19", "21.0.0"} {
		if got, err := resolveVersion(bad, vs); err == nil {
			t.Errorf("resolveVersion(%s) = %s", bad, got)
		}
	}
}
