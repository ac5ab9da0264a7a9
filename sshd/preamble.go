package sshd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"time"
)

// Version is the software version the server identifies itself with. It
// names OpenSSH because clients choose protocol variants by it: SFTP
// clients send SYMLINK's arguments in OpenSSH's order (which pkg/sftp
// implements, as OpenSSH's sftp-server does) only to a server that says
// OpenSSH, and the argument order would otherwise come out reversed.
const Version = "OpenSSH_9.9 devbox"

// identLine is what x/crypto/ssh writes as the server's identification.
var identLine = []byte("SSH-2.0-" + Version + "\r\n")

// gcmCiphers are the ciphers offered to a client that has AES-GCM: in
// x/crypto/ssh, AES-GCM runs at twice the speed of chacha20-poly1305
// (which OpenSSH clients otherwise pick first), so a client that can do
// AES-GCM is held to it.
var gcmCiphers = []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}

// otherCiphers are offered to clients without AES-GCM (dropbear, paramiko,
// old PuTTY): chacha20-poly1305, and AES-CTR, with x/crypto/ssh's MACs
// (encrypt-then-MAC first).
var otherCiphers = []string{"chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}

// preamble is what a client sent before key exchange: its identification
// and the ciphers of its first KEXINIT.
type preamble struct {
	ident   string
	ciphers []string // client to server, the client's preference first
}

// ciphers are the server's ciphers for this client.
func (p *preamble) serverCiphers() []string {
	for _, c := range p.ciphers {
		if slices.Contains(gcmCiphers, c) {
			return gcmCiphers
		}
	}
	return otherCiphers
}

// readPreamble sends the server's identification at once and reads the
// client's identification and KEXINIT, which every client sends without
// waiting for the server's KEXINIT. The returned conn replays what was
// read and swallows x/crypto/ssh's own identification, already sent.
// The login deadline bounds the reads; the KEXINIT gets at most
// kexinitWait of it: a client that waited for the server's KEXINIT first
// (none is known to) then gets every cipher rather than a stall.
func readPreamble(c net.Conn, login time.Time) (net.Conn, *preamble, error) {
	if _, err := c.Write(identLine); err != nil {
		return nil, nil, err
	}
	var seen bytes.Buffer
	r := bufio.NewReaderSize(io.TeeReader(c, &seen), 4096)
	p := &preamble{}
	// RFC 4253 4.2: lines before the identification are allowed.
	for i := 0; ; i++ {
		line, err := r.ReadString('\n')
		if err != nil || i > 32 {
			return nil, nil, errors.New("no SSH identification from the client")
		}
		if strings.HasPrefix(line, "SSH-") {
			p.ident = strings.TrimRight(line, "\r\n")
			break
		}
	}
	c.SetReadDeadline(minTime(login, time.Now().Add(kexinitWait)))
	p.ciphers = readKexinitCiphers(r)
	c.SetReadDeadline(login)
	// What the bufio reader consumed beyond what we parsed is in seen too.
	return &replayConn{Conn: c, replay: seen.Bytes(), skip: identLine}, p, nil
}

// kexinitWait is how long the server waits for the client's KEXINIT.
const kexinitWait = 2 * time.Second

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// readKexinitCiphers parses the client's first packet, a KEXINIT, for its
// client-to-server cipher list; nil if it is not one.
func readKexinitCiphers(r *bufio.Reader) []string {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 2 || n > 35000 {
		return nil
	}
	pkt := make([]byte, n-1)
	if _, err := io.ReadFull(r, pkt); err != nil {
		return nil
	}
	payload := pkt[:max(0, len(pkt)-int(hdr[4]))]
	const msgKexinit = 20
	if len(payload) < 17 || payload[0] != msgKexinit {
		return nil
	}
	rest := payload[17:]  // type, cookie
	var lists [3][]string // kex, host key, ciphers client to server
	for i := range lists {
		if len(rest) < 4 {
			return nil
		}
		l := binary.BigEndian.Uint32(rest)
		if uint32(len(rest)-4) < l {
			return nil
		}
		lists[i] = strings.Split(string(rest[4:4+l]), ",")
		rest = rest[4+l:]
	}
	return lists[2]
}

// replayConn gives x/crypto/ssh the bytes the preamble read, then the
// connection; and drops its identification line, which went out already.
type replayConn struct {
	net.Conn
	replay []byte
	skip   []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.replay) > 0 {
		n := copy(b, c.replay)
		c.replay = c.replay[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

func (c *replayConn) Write(b []byte) (int, error) {
	if c.skip != nil {
		if !bytes.Equal(b, c.skip) {
			return 0, errors.New("sshd: unexpected identification write")
		}
		c.skip = nil
		return len(b), nil
	}
	return c.Conn.Write(b)
}
