package store

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	const tok = "ATCTT3xFfGF0Zq8vR2mK9tW4aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
	c1, err := NewCheck(tok)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := NewCheck(tok)
	if c1 == c2 {
		t.Errorf("two checks of one token are equal (%s): the salt is missing", c1)
	}
	if strings.Contains(c1, tok) || strings.Contains(c1, tok[len(tok)-8:]) {
		t.Errorf("check %s shows the token", c1)
	}
	salt, mac, _ := strings.Cut(strings.TrimPrefix(c1, "v1:"), ":")
	tests := []struct {
		check, raw string
		want       bool
	}{
		{c1, tok, true},
		{c2, tok, true},
		{c1, tok + "x", false},
		{c1, tok[:len(tok)-1], false},
		{c1, "", false},
		{"", tok, false},
		{"v2:" + salt + ":" + mac, tok, false},
		{"v1:" + salt, tok, false},
		{"v1:" + salt + ":" + mac + "AA", tok, false},
		{"v1:" + salt[:10] + ":" + mac, tok, false},
		{"v1:" + mac + ":" + salt, tok, false},
		{"v1:!!!:" + mac, tok, false},
	}
	for _, tt := range tests {
		if got := checkMatches(tt.check, tt.raw); got != tt.want {
			t.Errorf("checkMatches(%q, %q) = %v, want %v", tt.check, tt.raw, got, tt.want)
		}
	}
}
