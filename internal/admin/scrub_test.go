package admin

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestConfigErrorsHideEnvValues checks that a validation message cannot show an environment
// value the config referenced, whether it quotes it as written, lowercased or escaped.
func TestConfigErrorsHideEnvValues(t *testing.T) {
	t.Parallel()
	env := map[string]string{"REDIS_PASSWORD": `Sup3rSecret"Pass\word`}
	es := config.Errors{
		{File: "c.yaml", Line: 1, Col: 1, Msg: `unknown level "sup3rsecret\"pass\\word" (want one of debug, info)`},
		{File: "c.yaml", Line: 2, Col: 1, Msg: `bad value Sup3rSecret"Pass\word here`},
		{File: "c.yaml", Line: 3, Col: 1, Msg: `SUP3RSECRET"PASS\WORD twice: Sup3rSecret"Pass\word`},
	}
	for _, e := range configErrors(es, env) {
		for _, s := range []string{e.Message, e.Text} {
			if strings.Contains(strings.ToLower(s), "sup3rsecret") {
				t.Errorf("the value shows: %s", s)
			}
			if !strings.Contains(s, "${REDIS_PASSWORD}") {
				t.Errorf("no reference in its place: %s", s)
			}
		}
	}
}
