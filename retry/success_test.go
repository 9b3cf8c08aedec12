package retry_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/retry"
)

func TestParseSuccess(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		statuses []string
		body     string
		wantErr  string
	}{
		{name: "empty"},
		{name: "class", statuses: []string{"2xx"}},
		{name: "class upper", statuses: []string{"2XX"}},
		{name: "code", statuses: []string{"200"}},
		{name: "range", statuses: []string{"200-204", " 201 - 299 "}},
		{name: "several", statuses: []string{"2xx", "302"}, body: "(?i)error"},
		{name: "short class", statuses: []string{"2x"}, wantErr: `success.status: "2x": want a code like 200, a class like 2xx or a range like 200-204`},
		{name: "class 6xx", statuses: []string{"6xx"}, wantErr: `success.status: "6xx"`},
		{name: "code 99", statuses: []string{"99"}, wantErr: `success.status: "99"`},
		{name: "code 600", statuses: []string{"600"}, wantErr: `success.status: "600"`},
		{name: "signed", statuses: []string{"+200"}, wantErr: `success.status: "+200"`},
		{name: "reversed range", statuses: []string{"299-200"}, wantErr: `success.status: "299-200"`},
		{name: "empty string", statuses: []string{""}, wantErr: `success.status: ""`},
		{name: "bad regexp", body: "(", wantErr: "success.body_not_match: error parsing regexp: missing closing ): `(`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := retry.ParseSuccess(tt.statuses, tt.body)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestSuccess_Match(t *testing.T) {
	t.Parallel()

	mustParse := func(statuses []string, body string) retry.Success {
		s, err := retry.ParseSuccess(statuses, body)
		require.NoError(t, err)
		return s
	}

	tests := []struct {
		name   string
		s      retry.Success
		status int
		body   string
		want   bool
	}{
		{"zero value 200", retry.Success{}, 200, "", true},
		{"zero value 299", retry.Success{}, 299, "", true},
		{"zero value 199", retry.Success{}, 199, "", false},
		{"zero value 300", retry.Success{}, 300, "", false},
		{"zero value ignores body", retry.Success{}, 200, "error", true},
		{"parsed empty is 2xx", mustParse(nil, ""), 204, "", true},
		{"code hit", mustParse([]string{"200"}, ""), 200, "", true},
		{"code miss", mustParse([]string{"200"}, ""), 201, "", false},
		{"range hit", mustParse([]string{"200-204"}, ""), 204, "", true},
		{"range miss", mustParse([]string{"200-204"}, ""), 205, "", false},
		{"extra code", mustParse([]string{"2xx", "302"}, ""), 302, "", true},
		{"body clean", mustParse(nil, "(?i)error"), 200, `{"ok":1}`, true},
		{"body matched", mustParse(nil, "(?i)error"), 200, `{"status":"Error"}`, false},
		{"body matched on a failure status", mustParse(nil, "(?i)error"), 500, "error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.s.Match(tt.status, []byte(tt.body)))
		})
	}
}
