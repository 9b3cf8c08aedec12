package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/retry"
)

func TestParse_Responses(t *testing.T) {
	t.Parallel()

	cfg, err := config.Parse("postback.yaml", []byte(`partners:
  - id: tune
    url: "https://demo.go2cloud.org/aff_lsr?transaction_id={click_id}"
    responses:
      - {status: ["200"], body_match: '^success=true', outcome: delivered}
      - status: 200
        header_match: {X-Verdict: "^dup"}
        outcome: duplicate
      - {body_match: 'success=false', outcome: rejected}
`), env)
	require.NoError(t, err)
	p := cfg.Partner("tune")
	require.Len(t, p.Responses, 3)
	now := time.Now()
	cases := []struct {
		res  retry.Result
		want retry.Outcome
	}{
		{retry.Result{StatusCode: 200, Body: []byte("success=true;")}, retry.Delivered},
		{retry.Result{StatusCode: 200, Header: map[string][]string{"X-Verdict": {"dup"}}}, retry.Duplicate},
		{retry.Result{StatusCode: 200, Body: []byte("success=false; err_msg=Invalid Trans. ID #1;")}, retry.Rejected},
		{retry.Result{StatusCode: 204}, retry.Delivered}, // no rule: success (any 2xx)
	}
	for _, c := range cases {
		require.Equal(t, c.want, p.Success.Classify(c.res, now).Outcome, string(c.res.Body))
	}
}

func TestParse_ResponsesProblems(t *testing.T) {
	t.Parallel()

	got := problems(t, `partners:
  - id: tune
    url: "https://demo.go2cloud.org/aff_lsr"
    responses:
      - {status: ["200", "2x"], outcome: delivered}
      - {body_match: "ok(?<x", outcome: retry}
      - {status: 200, outcome: exhausted}
      - {status: 200, body_match: x, color: red}
      - header_match: {X-R: "a)"}
        outcome: rejected
`)
	require.Equal(t, []string{
		`postback.yaml:5:26: partner "tune": responses[0].status: "2x": want a code like 200, a class like 2xx or a range like 200-204`,
		`postback.yaml:6:25: partner "tune": responses[1].body_match: error parsing regexp: invalid named capture: ` + "`(?<x`",
		`postback.yaml:7:32: partner "tune": responses[2].outcome: "exhausted": want delivered, duplicate, retry or rejected`,
		`postback.yaml:8:9: partner "tune": responses[3].outcome: required: delivered, duplicate, retry or rejected`,
		`postback.yaml:8:38: partner "tune": responses[3].color: unknown key (want status, body_match, header_match or outcome)`,
		`postback.yaml:9:29: partner "tune": responses[4].header_match.X-R: error parsing regexp: unexpected ): ` + "`a)`",
	}, got)
}

func TestParseIntake_IgnoresResponses(t *testing.T) {
	t.Parallel()

	_, err := config.ParseIntake("postback.yaml", []byte(`partners:
  - id: tune
    responses: [{body_match: "${env:UNSET_HERE}", outcome: retry}]
`), env)
	require.NoError(t, err)
}

func TestCheckData_WarnsOfAnUnreachableRule(t *testing.T) {
	t.Parallel()

	_, warnings, err := config.CheckData("postback.yaml", []byte(`partners:
  - id: tune
    url: "https://demo.go2cloud.org/aff_lsr"
    responses:
      - {outcome: retry}
      - {body_match: ok, outcome: delivered}
`), env)
	require.NoError(t, err)
	var got []string
	for _, w := range warnings {
		if w.Field == "responses[1]" {
			got = append(got, w.String())
		}
	}
	require.Equal(t, []string{`postback.yaml:6:9: warning: partner "tune": responses[1]: never used: responses[0] before it matches every answer`}, got)
}
