package config

import "testing"

// An IPv4-mapped prefix is stored as the IPv4 prefix it stands for: client addresses are
// unmapped before they are matched, so the mapped form would match no one.
func TestParsePrefixUnmaps(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"::ffff:192.0.2.0/120": "192.0.2.0/24",
		"::ffff:192.0.2.7/128": "192.0.2.7/32",
		"::ffff:198.51.100.7":  "198.51.100.7/32",
		"::ffff:0:0/96":        "0.0.0.0/0",
		"10.1.2.3/8":           "10.0.0.0/8",
		"2001:db8::/32":        "2001:db8::/32",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
}
