package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/templates"
)

func TestParse_Lifecycle(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("postback.yaml", []byte(`partners:
  - id: a
    url: "https://a.example/pb?c={click_id}"
    order_by: click_id
    delay: 5m
    cancel_on_reject: true
    window: 7d
    dedup: {key: "{click_id}:{event}:{transaction_id}", window: 48h}
  - id: b
    url: "https://b.example/pb"
    dedup: {key: "{transaction_id}"}
`), nil)
	require.NoError(t, err)
	a := cfg.Partner("a")
	require.Equal(t, templates.FieldClickID, a.OrderBy)
	require.Equal(t, 5*time.Minute, a.Delay)
	require.True(t, a.CancelOnReject)
	require.Equal(t, 7*24*time.Hour, a.Window)
	require.Equal(t, 48*time.Hour, a.Dedup.Window)
	var v templates.Values
	v.Set(templates.FieldClickID, "ck")
	v.Set(templates.FieldEvent, "purchase")
	v.Set(templates.FieldTransactionID, "o1")
	key, err := a.DedupKey(&v)
	require.NoError(t, err)
	require.Equal(t, "ck:purchase:o1", key)
	require.Equal(t, "ck", a.OrderValue(&v))
	require.Equal(t, config.DefaultDedupKeyWindow, cfg.Partner("b").Dedup.Window)
	require.Zero(t, cfg.Partner("b").OrderBy)
	require.Empty(t, cfg.Partner("b").OrderValue(&v))
}

func TestParse_LifecycleProblems(t *testing.T) {
	t.Parallel()
	src := `partners:
  - id: a
    url: "https://a.example/"
    order_by: clickid
    delay: 100ms
    window: soon
    dedup: {key: "{clik_id}", windw: 1h}
  - id: b
    url: "https://b.example/"
    cancel_on_reject: true
    dedupe: {key: "{click_id}"}
  - id: c
    url: "https://c.example/"
    dedup: {window: 1h}
`
	require.Equal(t, []string{
		`postback.yaml:4:15: partner "a": order_by: "clickid": want click_id or transaction_id`,
		`postback.yaml:5:12: partner "a": delay: 100ms: want 1s to 24h`,
		`postback.yaml:6:13: partner "a": window: "soon" is not a positive duration like 30s, 5m or 24h`,
		`postback.yaml:7:19: partner "a": dedup.key: unknown macro {clik_id} (did you mean {click_id}?)`,
		`postback.yaml:7:31: partner "a": dedup.windw: unknown key (did you mean window?)`,
		`postback.yaml:10:23: partner "b": cancel_on_reject: needs a delay: a rejection can only cancel a delivery that is still held (set delay, for example 5m)`,
		`postback.yaml:11:5: partner "b": dedupe: unknown key (did you mean dedup?)`,
		`postback.yaml:14:12: partner "c": dedup.key: required: a template such as "{click_id}:{event}:{transaction_id}"`,
	}, problems(t, src))
}
