package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// clientsEnv is the environment the client tests share: a login user who
// is not root, a password, rsync, git and scp inside (the build installs
// them from Debian's archive), and a host directory mounted at
// /run/hostsock for a root-only socket, the shape of a mounted docker.sock.
func clientsEnv(t *testing.T) (e *sshEnv, sockDir, project string) {
	t.Helper()
	sockDir = t.TempDir()
	os.Chmod(sockDir, 0o755)
	project = t.TempDir()
	os.Chown(project, projectOwner, projectOwner)
	os.WriteFile(filepath.Join(project, "theirs"), nil, 0o644)
	os.Chown(filepath.Join(project, "theirs"), projectOwner, projectOwner)
	extra := fmt.Sprintf(`[packages]
install = ["rsync", "git", "openssh-client"]

[[mounts]]
source = %q
target = "/run/hostsock"

[[mounts]]
source = "."
target = "/project"
`, sockDir)
	return upEnvIn(t, project, "clients", extra, `user = "dev"`), sockDir, project
}

// projectOwner owns the project directory (the spec's) that clientsEnv
// mounts: a developer's uid on the host, not the container user's.
const projectOwner = 4321

// inEnv runs a shell command in the environment as its user over OpenSSH.
func (e *sshEnv) inEnv(t *testing.T, cmd string) string {
	t.Helper()
	r := e.ssh(t, e.target(), cmd)
	if r.code != 0 {
		t.Fatalf("%s: exit %d: %s%s", cmd, r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// hostKeyFingerprint is the environment's host key as PuTTY's -hostkey
// takes it.
func (e *sshEnv) hostKeyFingerprint(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-lf", filepath.Join(e.root, "envs", e.name, "host_key.pub")).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[1]
}

func mustRun(t *testing.T, stdin string, cmd *exec.Cmd) string {
	t.Helper()
	r := runCmd(t, stdin, cmd)
	if r.code != 0 {
		t.Fatalf("%v: exit %d: %s%s", cmd.Args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// TestSSHClients drives the environment with the SSH clients people use,
// each doing what it is used for: a command with its exit status, a file
// up and back, a symlink, with key and password.
func TestSSHClients(t *testing.T) {
	e, _, _ := clientsEnv(t)
	port := strconv.Itoa(e.port)
	home := "/home/dev"
	blob := filepath.Join(t.TempDir(), "blob")
	data := make([]byte, 3<<20)
	rand.Read(data)
	os.WriteFile(blob, data, 0o644)

	t.Run("dropbear", func(t *testing.T) {
		dbkey := e.key + ".dropbear"
		mustRun(t, "", exec.Command("dropbearconvert", "openssh", "dropbear", e.key, dbkey))
		r := runCmd(t, "", exec.Command("dbclient", "-y", "-y", "-i", dbkey, "-p", port, e.target(), "id -un; exit 7"))
		if r.code != 7 || strings.TrimSpace(r.stdout) != "dev" {
			t.Fatalf("dbclient: exit %d, %q %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("putty", func(t *testing.T) {
		ppk := e.key + ".ppk"
		mustRun(t, "", exec.Command("puttygen", e.key, "-O", "private", "-o", ppk))
		common := []string{"-batch", "-P", port, "-hostkey", e.hostKeyFingerprint(t)}
		r := runCmd(t, "", exec.Command("plink", append(common, "-ssh", "-i", ppk, e.target(), "id -un; exit 5")...))
		if r.code != 5 || strings.TrimSpace(r.stdout) != "dev" {
			t.Fatalf("plink with a key: exit %d, %q %s", r.code, r.stdout, r.stderr)
		}
		if got := mustRun(t, "", exec.Command("plink", append(common, "-ssh", "-pw", e.password, e.target(), "echo pw-ok")...)); strings.TrimSpace(got) != "pw-ok" {
			t.Fatalf("plink with a password: %q", got)
		}
		mustRun(t, "", exec.Command("pscp", append(common, "-i", ppk, blob, e.target()+":"+home+"/pscp.bin")...))
		back := filepath.Join(t.TempDir(), "back")
		batch := filepath.Join(t.TempDir(), "batch")
		os.WriteFile(batch, []byte("get "+home+"/pscp.bin "+back+"\n"), 0o644)
		mustRun(t, "", exec.Command("psftp", append(common, "-i", ppk, "-b", batch, e.target())...))
		checkSame(t, blob, back)
	})
	t.Run("paramiko", func(t *testing.T) {
		script := `
import paramiko, sys
port, key, blob = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect("127.0.0.1", port=port, username="dev", key_filename=key, look_for_keys=False, allow_agent=False)
_, out, _ = c.exec_command("id -un; exit 3")
print(out.read().decode().strip(), out.channel.recv_exit_status())
s = c.open_sftp()
s.put(blob, "/home/dev/paramiko.bin")
s.get("/home/dev/paramiko.bin", blob + ".paramiko")
s.symlink("target-p", "/home/dev/link-p")
print(s.readlink("/home/dev/link-p"))
`
		pythonClient(t, e, "paramiko", script, port, blob, "dev 3", "link-p", "target-p")
	})
	t.Run("asyncssh", func(t *testing.T) {
		script := `
import asyncio, asyncssh, sys
port, key, blob = int(sys.argv[1]), sys.argv[2], sys.argv[3]
async def main():
    async with asyncssh.connect("127.0.0.1", port=port, username="dev", client_keys=[key], known_hosts=None) as c:
        r = await c.run("id -un; exit 4")
        print(r.stdout.strip(), r.exit_status)
        async with c.start_sftp_client() as s:
            await s.put(blob, "/home/dev/asyncssh.bin")
            await s.get("/home/dev/asyncssh.bin", blob + ".asyncssh")
            await s.symlink("target-a", "/home/dev/link-a")
            print(await s.readlink("/home/dev/link-a"))
asyncio.run(main())
`
		pythonClient(t, e, "asyncssh", script, port, blob, "dev 4", "link-a", "target-a")
	})
	t.Run("ansible", func(t *testing.T) {
		dir := t.TempDir()
		inv := filepath.Join(dir, "hosts")
		os.WriteFile(inv, []byte(fmt.Sprintf("env ansible_host=127.0.0.1 ansible_port=%d ansible_user=dev ansible_ssh_private_key_file=%s ansible_ssh_common_args='-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n", e.port, e.key)), 0o644)
		cmd := exec.Command("ansible", "all", "-i", inv, "-m", "raw", "-a", "id -un")
		// ansible's ssh uses ControlMaster/ControlPersist: multiplexing too.
		cmd.Env = append(os.Environ(), "HOME="+dir, "ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_SSH_CONTROL_PATH_DIR="+dir+"/cp", "ANSIBLE_NOCOLOR=1")
		out := mustRun(t, "", cmd)
		if !strings.Contains(out, "CHANGED") || !strings.Contains(out, "dev") {
			t.Fatalf("ansible: %s", out)
		}
	})
	t.Run("rsync", func(t *testing.T) {
		src := t.TempDir()
		os.WriteFile(filepath.Join(src, "a"), data, 0o644)
		os.Symlink("a", filepath.Join(src, "rel-link"))
		rsh := "ssh " + strings.Join(e.sshOpts(), " ") + " -p " + port
		mustRun(t, "", exec.Command("rsync", "-a", "-e", rsh, src+"/", e.target()+":"+home+"/rsync/"))
		back := t.TempDir()
		mustRun(t, "", exec.Command("rsync", "-a", "-e", rsh, e.target()+":"+home+"/rsync/", back+"/"))
		checkSame(t, filepath.Join(src, "a"), filepath.Join(back, "a"))
		if l, _ := os.Readlink(filepath.Join(back, "rel-link")); l != "a" {
			t.Errorf("rsync's link came back as %q", l)
		}
	})
	t.Run("git", func(t *testing.T) {
		e.inEnv(t, "git init -q --bare "+home+"/repo.git")
		work := t.TempDir()
		gitEnv := append(os.Environ(), "GIT_SSH_COMMAND=ssh "+strings.Join(e.sshOpts(), " "),
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		git := func(dir string, args ...string) {
			cmd := exec.Command("git", args...)
			cmd.Dir, cmd.Env = dir, gitEnv
			mustRun(t, "", cmd)
		}
		url := fmt.Sprintf("ssh://dev@127.0.0.1:%d%s/repo.git", e.port, home)
		git(work, "init", "-q", "-b", "main")
		os.WriteFile(filepath.Join(work, "f"), []byte("hello"), 0o644)
		git(work, "add", "f")
		git(work, "commit", "-q", "-m", "one")
		git(work, "push", "-q", url, "main")
		clone := filepath.Join(t.TempDir(), "clone")
		git(filepath.Dir(clone), "clone", "-q", "-b", "main", url, clone)
		if got, _ := os.ReadFile(filepath.Join(clone, "f")); string(got) != "hello" {
			t.Errorf("cloned f = %q", got)
		}
	})
	t.Run("scp-legacy-protocol", func(t *testing.T) {
		back := filepath.Join(t.TempDir(), "back")
		mustRun(t, "", exec.Command("scp", append(e.sshOpts(), "-O", "-P", port, blob, e.target()+":"+home+"/scp-O.bin")...))
		mustRun(t, "", exec.Command("scp", append(e.sshOpts(), "-O", "-P", port, e.target()+":"+home+"/scp-O.bin", back)...))
		checkSame(t, blob, back)
	})
	t.Run("openssh-sftp-symlink", func(t *testing.T) {
		batch := "ln -s target-o " + home + "/link-o\n"
		mustRun(t, batch, exec.Command("sftp", append(e.sshOpts(), "-P", port, "-b", "-", e.target())...))
		if got := e.inEnv(t, "readlink "+home+"/link-o"); got != "target-o" {
			t.Errorf("sftp's ln -s made a link to %q, not target-o", got)
		}
	})
	t.Run("sshfs", func(t *testing.T) {
		mnt := t.TempDir()
		opts := fmt.Sprintf("port=%d,IdentityFile=%s,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,IdentitiesOnly=yes", e.port, e.key)
		r := runCmd(t, "", exec.Command("sshfs", "-o", opts, e.target()+":"+home, mnt))
		if r.code != 0 {
			t.Fatalf("sshfs: %s", r.stderr)
		}
		defer exec.Command("fusermount", "-u", mnt).Run()
		if err := os.WriteFile(filepath.Join(mnt, "via-sshfs"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("g", filepath.Join(mnt, "rel")); err != nil {
			t.Fatal(err)
		}
		if got := e.inEnv(t, "readlink "+home+"/rel; stat -c %U "+home+"/via-sshfs; md5sum < "+home+"/via-sshfs"); !strings.HasPrefix(got, "g\ndev\n") {
			t.Errorf("through sshfs: %q", got)
		}
	})
	t.Run("openssh-options", func(t *testing.T) {
		for _, c := range [][]string{{"-c", "chacha20-poly1305@openssh.com"}, {"-c", "aes256-ctr", "-m", "hmac-sha2-256-etm@openssh.com"}, {"-c", "aes128-gcm@openssh.com"}} {
			if got := strings.TrimSpace(e.ssh(t, append(c, e.target(), "echo ok")...).stdout); got != "ok" {
				t.Errorf("ssh %v: %q", c, got)
			}
		}
		if got := e.inEnv(t, "echo ${LC_DEVBOX:-unset} ${FOO:-unset}"); got != "unset unset" {
			t.Errorf("environment leaked in: %q", got)
		}
		r := e.ssh(t, "-o", "SetEnv=LC_DEVBOX=yes FOO=bar", e.target(), "echo ${LC_DEVBOX:-unset} ${FOO:-unset}")
		if got := strings.TrimSpace(r.stdout); got != "yes unset" {
			t.Errorf("SetEnv: %q (LC_* accepted, the rest refused, as OpenSSH's AcceptEnv)", got)
		}
		ctl := filepath.Join(t.TempDir(), "ctl")
		master := exec.Command("ssh", append(e.sshOpts(), "-p", port, "-M", "-S", ctl, "-N", e.target())...)
		if err := master.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { master.Process.Kill(); master.Wait() }()
		var got string
		for i := 0; i < 50 && got != "via-master"; i++ {
			time.Sleep(100 * time.Millisecond)
			got = strings.TrimSpace(runCmd(t, "", exec.Command("ssh", append(e.sshOpts(), "-S", ctl, "-p", port, e.target(), "echo via-master")...)).stdout)
		}
		if got != "via-master" {
			t.Errorf("ControlMaster: %q", got)
		}
	})
}

// debianPython is Debian's python3, which has Debian's paramiko and
// asyncssh (another python3 may come first on PATH).
const debianPython = "/usr/bin/python3"

// pythonClient runs a Python SSH client's script, which logs in, prints
// the login name and an exit code (want), copies blob there and back
// (to blob.NAME) over SFTP and makes the symlink link to target in the
// home directory, whose target it reads back and prints.
func pythonClient(t *testing.T, e *sshEnv, name, script, port, blob, want, link, target string) {
	t.Helper()
	out := mustRun(t, "", exec.Command(debianPython, "-c", script, port, e.key, blob))
	if out != want+"\n"+target+"\n" {
		t.Fatalf("%s: %q", name, out)
	}
	checkSame(t, blob, blob+"."+name)
	if got := e.inEnv(t, "readlink /home/dev/"+link); got != target {
		t.Errorf("%s's symlink points at %q, not %s", name, got, target)
	}
}

func checkSame(t *testing.T, a, b string) {
	t.Helper()
	x, _ := os.ReadFile(a)
	y, err := os.ReadFile(b)
	if err != nil || !bytes.Equal(x, y) {
		t.Errorf("%s differs from %s (%d and %d bytes, %v)", b, a, len(x), len(y), err)
	}
}

// TestSSHUserRights: a login user who is not root forwards, listens and
// gets an agent socket with its own rights, not the server's.
func TestSSHUserRights(t *testing.T) {
	e, sockDir, project := clientsEnv(t)
	port := strconv.Itoa(e.port)
	// A root-only socket on the host, mounted in: what dev must not reach.
	sock := filepath.Join(sockDir, "root.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	os.Chmod(sock, 0o600)
	reached := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			reached <- struct{}{}
			c.Close()
		}
	}()
	local := freePort(t)
	e.forward(t, "-L", fmt.Sprintf("127.0.0.1:%d:/run/hostsock/root.sock", local))
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", local))
		if err == nil {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			c.Read(make([]byte, 1))
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-reached:
		t.Error("dev reached a root-only socket through ssh -L")
	case <-time.After(time.Second):
	}

	// The project owner's files are dev's inside; dev's new files are
	// the project owner's on the host (an idmapped mount), not a range
	// id's or root's.
	if got := e.inEnv(t, "stat -c %U /project/theirs; touch /project/by-dev"); got != "dev" {
		t.Errorf("the project owner's file is %q's inside, want dev's", got)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(project, "by-dev"), &st); err != nil || st.Uid != projectOwner || st.Gid != projectOwner {
		t.Errorf("dev's file in the project is %d:%d on the host (%v), want %d", st.Uid, st.Gid, err, projectOwner)
	}

	// -R: a port below 1024 needs root; a high one is dev's.
	r := e.ssh(t, "-o", "ExitOnForwardFailure=yes", "-R", "81:127.0.0.1:9", e.target(), "true")
	if r.code == 0 {
		t.Error("dev listened on port 81 through ssh -R")
	}
	high := freePort(t)
	if r := e.ssh(t, "-o", "ExitOnForwardFailure=yes", "-R", fmt.Sprintf("%d:127.0.0.1:9", high), e.target(), "true"); r.code != 0 {
		t.Errorf("ssh -R %d as dev: %s", high, r.stderr)
	}

	// The agent socket and its directory are dev's, made by dev.
	agentSock := filepath.Join(t.TempDir(), "agent")
	agent := exec.Command("ssh-agent", "-D", "-a", agentSock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { agent.Process.Kill(); agent.Wait() }()
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(agentSock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd := exec.Command("ssh", append(e.sshOpts(), "-A", "-p", port, e.target(), `stat -c "%U %a" "$SSH_AUTH_SOCK" "$(dirname "$SSH_AUTH_SOCK")"`)...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+agentSock)
	out := mustRun(t, "", cmd)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "dev ") || lines[1] != "dev 700" {
		t.Errorf("agent socket and directory: %q", out)
	}

	// SFTP and scp write as dev.
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, []byte("x"), 0o644)
	mustRun(t, "", exec.Command("scp", append(e.sshOpts(), "-P", port, f, e.target()+":/home/dev/by-scp")...))
	if got := e.inEnv(t, "stat -c %U /home/dev/by-scp"); got != "dev" {
		t.Errorf("a file written by scp belongs to %q", got)
	}
}

// TestSSHNoOutputLost: output still in the pipe when the command exits is
// delivered whole to a client that reads slowly, with and without a
// terminal.
func TestSSHNoOutputLost(t *testing.T) {
	e := upEnv(t, "sshslow", "")
	sshCmd := "ssh " + strings.Join(e.sshOpts(), " ") + " -p " + strconv.Itoa(e.port) + " " + e.target()
	for _, c := range []struct{ remote, count, want string }{
		{"head -c 2200000 /dev/zero", "wc -c", "2200000"},
		{"head -c 100000000 /dev/zero", "wc -c", "100000000"},
	} {
		out := mustRun(t, "", exec.Command("bash", "-c", fmt.Sprintf("%s '%s' | (sleep 1; %s)", sshCmd, c.remote, c.count)))
		if strings.TrimSpace(out) != c.want {
			t.Errorf("%s through a slow reader: %s bytes, want %s", c.remote, strings.TrimSpace(out), c.want)
		}
	}
	out := mustRun(t, "", exec.Command("bash", "-c", sshCmd+" -tt 'seq 1 200000' | (sleep 1; wc -l)"))
	if strings.TrimSpace(out) != "200000" {
		t.Errorf("with a terminal, through a slow reader: %s lines, want 200000", strings.TrimSpace(out))
	}
}

// TestSSHPenaltiesSpareKeys: wrong passwords penalize password logins of
// that user from that source, never a key login.
func TestSSHPenaltiesSpareKeys(t *testing.T) {
	e := upEnv(t, "sshpenalty", "")
	port := strconv.Itoa(e.port)
	pwOpts := []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1", "-p", port}
	for i := 0; i < 6; i++ {
		runCmd(t, "", exec.Command("sshpass", append([]string{"-p", "wrong", "ssh"}, append(pwOpts, e.target(), "true")...)...))
	}
	start := time.Now()
	if got := strings.TrimSpace(e.ssh(t, e.target(), "echo key-ok").stdout); got != "key-ok" {
		t.Fatalf("key login after wrong passwords: %q", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("key login took %s after another's wrong passwords", d)
	}
	if r := runCmd(t, "", exec.Command("sshpass", append([]string{"-p", e.password, "ssh"}, append(pwOpts, e.target(), "true")...)...)); r.code == 0 {
		t.Error("the right password got in while its (source, user) was penalized")
	}
}

// TestSSHWindowChange: the terminal's size at start and after a change
// reach the session's pty.
func TestSSHWindowChange(t *testing.T) {
	e := upEnv(t, "sshwinch", "")
	c := e.goClient(t)
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 37, 91, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Stdout = &out
	if err := s.Start("stty size; sleep 1; stty size"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := s.WindowChange(50, 120); err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if got := strings.Fields(out.String()); strings.Join(got, " ") != "37 91 50 120" {
		t.Errorf("pty sizes: %q, want 37 91 then 50 120", out.String())
	}
}
