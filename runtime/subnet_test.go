package runtime

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func cidr(s string) *net.IPNet {
	_, n, _ := net.ParseCIDR(s)
	return n
}

// TestPickSubnet: the first subnet of the pools that nothing on the host
// overlaps; a named one that collides is refused naming the holder.
func TestPickSubnet(t *testing.T) {
	held := []heldNet{{cidr("10.88.0.0/16"), "podman0"}, {cidr("10.0.0.0/8"), "vpn0"}, {cidr("172.29.0.0/20"), "other"}}
	got, err := pickSubnet("", DefaultPools, held)
	if err != nil || got.String() != "172.29.16.0/20" {
		t.Errorf("pick: %v %v, want 172.29.16.0/20", got, err)
	}
	if _, err := pickSubnet("10.88.0.0/16", DefaultPools, held); err == nil || !strings.Contains(err.Error(), "taken by podman0") {
		t.Errorf("a named subnet podman0 holds: %v", err)
	}
	if got, err := pickSubnet("192.168.50.0/24", DefaultPools, held); err != nil || got.String() != "192.168.50.0/24" {
		t.Errorf("a free named subnet: %v %v", got, err)
	}
	all := []heldNet{{cidr("0.0.0.0/1"), "a"}, {cidr("128.0.0.0/1"), "b"}}
	if _, err := pickSubnet("", DefaultPools, all); err == nil {
		t.Error("a subnet when every pool is taken")
	}
}

func TestLoadPools(t *testing.T) {
	dir := t.TempDir()
	if p, err := LoadPools(filepath.Join(dir, "none.toml")); err != nil || len(p) != len(DefaultPools) {
		t.Errorf("no file: %v %v", p, err)
	}
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[[network.address_pools]]\nbase = \"100.64.0.0/16\"\nsize = 24\n"), 0o644)
	if p, err := LoadPools(good); err != nil || len(p) != 1 || p[0].Base != "100.64.0.0/16" || p[0].Size != 24 {
		t.Errorf("pools: %v %v", p, err)
	}
	for name, body := range map[string]string{
		"size": "[[network.address_pools]]\nbase = \"100.64.0.0/16\"\nsize = 8\n",
		"base": "[[network.address_pools]]\nbase = \"fd00::/8\"\nsize = 24\n",
		"key":  "[network]\npool = 1\n",
	} {
		p := filepath.Join(dir, name+".toml")
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := LoadPools(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
}
