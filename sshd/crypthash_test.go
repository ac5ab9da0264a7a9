package sshd

import "testing"

// TestYescrypt: hashes made on this Debian host by libxcrypt (the
// library passwd and chpasswd use; through python3's crypt module:
// crypt.crypt(password, setting)) are verified, the wrong password and a
// changed hash are not, and a malformed one is not taken.
func TestYescrypt(t *testing.T) {
	for _, v := range []struct{ password, hash string }{
		{"hunter2", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$PmNgGTLMFjJn.URBv11CpTEm5RwlKtPjRtztKe6.b33"},
		{"", "$y$j75$saltsalt$BT/eINL.qJ28Ek8xmIKTrnDwZkROSVFFX9HKxdqaWAD"},
		{"pässwörd with spaces", "$y$jC5$/rWYu/6h8ddzHSgH6shfb0$e7byr4kvhLwD0tBi.u2NIq.CJL0C5GP9fJFXSIDIda/"},
		{"devbox", "$y$j9T$3abnEgqO7po0u9kF$RbsPM/CTgs2gvKV8UsoRrBqmTLXz2ASw2WKuDeu/aV9"},
	} {
		if !HashSupported(v.hash) {
			t.Errorf("%s: not supported", v.hash)
			continue
		}
		if !verifyHash(v.hash, v.password) {
			t.Errorf("%q does not verify against %s", v.password, v.hash)
		}
		if verifyHash(v.hash, v.password+"x") {
			t.Errorf("a wrong password verifies against %s", v.hash)
		}
		changed := v.hash[:len(v.hash)-1] + "0"
		if verifyHash(changed, v.password) {
			t.Errorf("a changed hash %s verifies", changed)
		}
	}
	for _, bad := range []string{"$y$j9T$salt$short", "$y$", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$", "$y$j~T$F5Jx5fExrKuPp53xLKQ..1$PmNgGTLMFjJn.URBv11CpTEm5RwlKtPjRtztKe6.b33"} {
		if HashSupported(bad) || verifyHash(bad, "") {
			t.Errorf("%q taken", bad)
		}
	}
	a, err := newAuthenticator(Config{User: "root", PasswordHash: "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$PmNgGTLMFjJn.URBv11CpTEm5RwlKtPjRtztKe6.b33"})
	if err != nil || !a.checkPassword("hunter2") {
		t.Errorf("a server with a yescrypt hash: %v", err)
	}
}
