package config

import "testing"

// Each case: a template with ${V}, a value, and what admin.token / listeners[0].address must be.
// TestEnvValueContexts checks contexts the scanner must read right: a value after a tag or an
// anchor is still a whole scalar, a sibling key after a block scalar in a sequence item is not
// block content, and a reference in the middle of a plain scalar (after ",", " - ", another
// reference, or on a continuation line) is inserted as it is, not quoted.
func TestEnvValueContexts(t *testing.T) {
	cases := []struct {
		name, tpl, v, want string
		listener           bool
	}{
		{name: "after a tag", tpl: "version: 1\nadmin:\n  token: !!str ${V}\n", v: "&a b", want: "&a b"},
		{name: "after a tag, quoted value", tpl: "version: 1\nadmin:\n  token: !!str ${V}\n", v: "'q'", want: "'q'"},
		{name: "after an anchor", tpl: "version: 1\nadmin:\n  token: &t ${V}\n", v: "!!binary QQ==", want: "!!binary QQ=="},
		{name: "after a comma in block context", tpl: "version: 1\nadmin:\n  token: a,${V}\n", v: "b", want: "a,b"},
		{name: "after ' - ' in a plain scalar", tpl: "version: 1\nadmin:\n  token: a - ${V}\n", v: "b", want: "a - b"},
		{name: "two references", tpl: "version: 1\nadmin:\n  token: ${W}${V}\n", v: "b", want: "a,b"},
		{name: "plain continuation line", tpl: "version: 1\nadmin:\n  token: abc\n    ${V}\n", v: "d", want: "abc d"},
		{name: "sibling key after a block scalar in a sequence item", listener: true,
			tpl: "version: 1\nlisteners:\n  - name: |\n      x\n    address: ${V}\n", v: "':80' #x", want: "':80' #x"},
	}
	for _, c := range cases {
		env := func(k string) (string, bool) {
			switch k {
			case "V":
				return c.v, true
			case "W":
				return "a,", true
			}
			return "", false
		}
		src, err := Decode("t.yaml", []byte(c.tpl), env)
		if err != nil {
			t.Errorf("%s: error %v (a refusal would be acceptable only with a clear message)", c.name, err)
			continue
		}
		got := src.Config.Admin.Token
		if c.listener {
			got = src.Config.Listeners[0].Address
		}
		if got != c.want {
			t.Errorf("%s: V=%q decoded %q, want %q", c.name, c.v, got, c.want)
		}
	}
}
