package retry_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/retry"
)

func rules(t *testing.T, srcs ...retry.RuleSource) retry.Success {
	t.Helper()
	out := make([]retry.Rule, len(srcs))
	for i, src := range srcs {
		r, err := retry.ParseRule(i, src)
		require.NoError(t, err)
		out[i] = r
	}
	return retry.Success{}.WithResponses(out)
}

func TestSuccess_ClassifyResponses(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	s := rules(t,
		retry.RuleSource{Status: []string{"200"}, BodyMatch: `^success=true`, Outcome: "delivered"},
		retry.RuleSource{Status: []string{"2xx"}, BodyMatch: `(?i)conversion exists`, Outcome: "duplicate"},
		retry.RuleSource{Status: []string{"200"}, HeaderMatch: [][2]string{{"x-result", "^later$"}}, Outcome: "retry"},
		retry.RuleSource{Status: []string{"200"}, BodyMatch: `^success=false`, Outcome: "rejected"},
	)
	tests := map[string]struct {
		res      retry.Result
		want     retry.Outcome
		wantRule string
		wantRA   time.Duration
	}{
		"delivered by body": {
			res: retry.Result{StatusCode: 200, Body: []byte("success=true;")}, want: retry.Delivered,
			wantRule: `responses[0] (status 200, body_match "^success=true")`,
		},
		"a 200 refusing is rejected": {
			res: retry.Result{StatusCode: 200, Body: []byte("success=false; err_msg=Invalid Trans. ID #1;")}, want: retry.Rejected,
			wantRule: `responses[3] (status 200, body_match "^success=false")`,
		},
		"duplicate": {
			res: retry.Result{StatusCode: 201, Body: []byte("Conversion exists")}, want: retry.Duplicate,
			wantRule: `responses[1] (status 2xx, body_match "(?i)conversion exists")`,
		},
		"header rule, Retry-After honoured": {
			res:  retry.Result{StatusCode: 200, Header: http.Header{"X-Result": {"later"}, "Retry-After": {"30"}}, Body: []byte("?")},
			want: retry.Retry, wantRA: 30 * time.Second,
			wantRule: `responses[2] (status 200, header_match X-Result "^later$")`,
		},
		"no rule: success decides": {res: retry.Result{StatusCode: 200, Body: []byte("whatever")}, want: retry.Delivered},
		"no rule on a 500":         {res: retry.Result{StatusCode: 500, Body: []byte("success=true")}, want: retry.Retry},
		"no response never matches": {
			res: retry.Result{Err: errTimeout{}}, want: retry.Retry,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			d := s.Classify(tt.res, now)
			require.Equal(t, tt.want, d.Outcome, d.Reason)
			require.Equal(t, tt.wantRule, d.Rule)
			require.Equal(t, tt.wantRA, d.RetryAfter)
			if tt.wantRule != "" {
				require.Contains(t, d.Reason, tt.wantRule+" matched")
			}
		})
	}
}

type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }

func TestParseRule_Errors(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		src          retry.RuleSource
		field, msg   string
		item, offset int
	}{
		"no outcome":      {src: retry.RuleSource{Status: []string{"200"}}, field: "outcome", msg: "required"},
		"bad outcome":     {src: retry.RuleSource{Outcome: "exhausted"}, field: "outcome", msg: `"exhausted": want delivered, duplicate, retry or rejected`},
		"bad status":      {src: retry.RuleSource{Status: []string{"200", "2x"}, Outcome: "retry"}, field: "status", item: 1, msg: `"2x"`},
		"bad body regexp": {src: retry.RuleSource{BodyMatch: `ok(?<x`, Outcome: "retry"}, field: "body_match", offset: 2, msg: "error parsing regexp"},
		"bad header regexp": {
			src:   retry.RuleSource{HeaderMatch: [][2]string{{"X-R", "a)"}}, Outcome: "retry"},
			field: "header_match.X-R", msg: "unexpected )",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := retry.ParseRule(0, tt.src)
			var re *retry.RuleError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tt.field, re.Field)
			require.Equal(t, tt.item, re.Item)
			require.Equal(t, tt.offset, re.Offset)
			require.Contains(t, re.Msg, tt.msg)
		})
	}
}
