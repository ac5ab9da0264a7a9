package sshd

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// account is a user of the container, from its /etc/passwd.
type account struct {
	name     string
	uid, gid int
	home     string
	shell    string
	groups   []uint32
}

// lookupAccount reads name's entry from the container's /etc/passwd and
// its supplementary groups from /etc/group.
func lookupAccount(name string) (*account, error) {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 || fields[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(fields[2])
		gid, err2 := strconv.Atoi(fields[3])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("/etc/passwd: bad entry for %s", name)
		}
		a := &account{name: name, uid: uid, gid: gid, home: fields[5], shell: fields[6]}
		a.groups = supplementaryGroups(name)
		return a, nil
	}
	if name == "root" {
		return &account{name: "root", home: "/root", shell: "/bin/sh"}, nil
	}
	return nil, fmt.Errorf("no user %s in the container's /etc/passwd", name)
}

func supplementaryGroups(name string) []uint32 {
	f, err := os.Open("/etc/group")
	if err != nil {
		return nil
	}
	defer f.Close()
	var gids []uint32
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 4 {
			continue
		}
		for _, m := range strings.Split(fields[3], ",") {
			if m == name {
				if gid, err := strconv.Atoi(fields[2]); err == nil {
					gids = append(gids, uint32(gid))
				}
			}
		}
	}
	return gids
}
