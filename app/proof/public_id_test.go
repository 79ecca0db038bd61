package proof

import (
	"strings"
	"testing"
)

func TestValidPublicID(t *testing.T) {
	cases := []struct {
		id   string
		want bool
	}{
		{"0123456789abcdef0123", true},
		{"mzxw6ytboi2dcnzrgq3t", true},
		{"0123456789abcdef012", false},   // 19
		{"0123456789abcdef01234", false}, // 21
		{strings.Repeat("z", 64), false},
		{"", false},
		{"0123456789ABCDEF0123", false},
		{"0123456789abcdef012-", false},
		{"0123456789abcdef012\u00e9"[:20], false},
		{"0123456789abcdef'--;", false},
		{"../../../etc/passwd0", false},
		{"0123456789abcdef 123", false},
	}
	for _, c := range cases {
		if got := ValidPublicID(c.id); got != c.want {
			t.Errorf("ValidPublicID(%q) = %v, want %v", c.id, got, c.want)
		}
	}
}
