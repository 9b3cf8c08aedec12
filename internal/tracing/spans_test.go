package tracing_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/tracing"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// setup returns a Tracer whose spans land in the returned exporter as
// each ends.
func setup(t *testing.T) (*tracing.Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tracing.New(tp), exp
}

// The personal and secret values of the test event and config: no span
// may carry any of them.
var secrets = []string{
	"jane@example.com", "203.0.113.9", "6D92078A-8246-4BA4-AE5B-76104861E7DC", "clk-secret-77",
	"tok-partner-secret", "/c?", "/d?", "127.0.0.1",
}

const tracedYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: traced
    match: all
    propagate_trace: true
    url: "TRACED/c?click={click_id}&em={email|sha256}&ip={ip}&idfa={idfa}&n={attempt}"
    headers: {X-Token: "tok-partner-secret"}
    retry: {max_attempts: 3, initial_interval: 100ms, max_interval: 200ms, multiplier: 2}
  - id: quiet
    match: all
    url: "QUIET/d?click={click_id}"
`

const eventJSON = `{"id":"EVID","name":"purchase","click_id":"clk-secret-77",
  "device":{"ip":"203.0.113.9","idfa":"6D92078A-8246-4BA4-AE5B-76104861E7DC"},
  "user":{"email":"jane@example.com"}}`

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func byName(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// waitSpans waits until exp holds n spans named name.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, name string, n int) []tracetest.SpanStub {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := byName(exp.GetSpans(), name)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d %s spans, have %d", n, name, len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noSecrets fails if any span's name, attributes, status, events or links
// hold one of the test's personal or secret values.
func noSecrets(t *testing.T, spans tracetest.SpanStubs) {
	t.Helper()
	for _, s := range spans {
		text := []string{s.Name, s.Status.Description}
		for _, kv := range s.Attributes {
			text = append(text, kv.Value.Emit())
		}
		for _, e := range s.Events {
			text = append(text, e.Name)
			for _, kv := range e.Attributes {
				text = append(text, kv.Value.Emit())
			}
		}
		for _, l := range s.Links {
			for _, kv := range l.Attributes {
				text = append(text, kv.Value.Emit())
			}
		}
		for _, kv := range s.Resource.Attributes() {
			text = append(text, kv.Value.Emit())
		}
		for _, v := range text {
			for _, secret := range secrets {
				require.NotContains(t, v, secret, "span %s", s.Name)
			}
		}
	}
}

// An event's intake span and its deliveries' attempt spans: each attempt,
// retries included, links to the intake span through the traceparent its
// task carried across Redis; the partner that asked for it receives the
// attempt's traceparent, the other none; no span holds a URL, a header or
// a field of the event.
func TestSpans_IntakeLinksAttempts(t *testing.T) {
	tr, exp := setup(t)
	traced, quiet := stacktest.NewPartner(t), stacktest.NewPartner(t)
	traced.Respond = func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	yaml := strings.NewReplacer("TRACED", traced.URL, "QUIET", quiet.URL).Replace(tracedYAML)
	s := stacktest.New(t, yaml, stacktest.Options{Tracer: tr})

	code, out := s.Post(t, "/v1/events", "application/json", strings.Replace(eventJSON, "EVID", "evt-trace-1", 1))
	require.Equal(t, http.StatusAccepted, code, "%v", out)
	tracedID, quietID := wire.DeliveryID("evt-trace-1", "traced"), wire.DeliveryID("evt-trace-1", "quiet")
	s.WaitStatus(t, tracedID, retry.StatusDelivered, 10*time.Second)
	s.WaitStatus(t, quietID, retry.StatusDelivered, 10*time.Second)
	attempts := waitSpans(t, exp, tracing.SpanAttempt, 3)

	intakes := byName(exp.GetSpans(), tracing.SpanIntake)
	require.Len(t, intakes, 1)
	in := attrs(intakes[0])
	require.Equal(t, "evt-trace-1", in[tracing.AttrEventID].AsString())
	require.ElementsMatch(t, []string{"traced", "quiet"}, in[tracing.AttrPartners].AsStringSlice())
	require.Equal(t, tracing.ResultAccepted, in[tracing.AttrResult].AsString())
	require.EqualValues(t, 2, in[tracing.AttrQueued].AsInt64())
	require.Equal(t, trace.SpanKindProducer, intakes[0].SpanKind)

	byDelivery := map[string][]tracetest.SpanStub{}
	for _, a := range attempts {
		byDelivery[attrs(a)[tracing.AttrDeliveryID].AsString()] = append(byDelivery[attrs(a)[tracing.AttrDeliveryID].AsString()], a)
		require.Len(t, a.Links, 1, "an attempt links to its intake")
		require.Equal(t, intakes[0].SpanContext.TraceID(), a.Links[0].SpanContext.TraceID())
		require.Equal(t, intakes[0].SpanContext.SpanID(), a.Links[0].SpanContext.SpanID())
		require.NotEqual(t, intakes[0].SpanContext.TraceID(), a.SpanContext.TraceID(), "an attempt is a trace of its own, linked")
	}
	require.Len(t, byDelivery[tracedID], 2)
	require.Len(t, byDelivery[quietID], 1)
	first, second := attrs(byDelivery[tracedID][0]), attrs(byDelivery[tracedID][1])
	if first[tracing.AttrAttempt].AsInt64() == 2 {
		first, second = second, first
	}
	require.Equal(t, "traced", first[tracing.AttrPartner].AsString())
	require.EqualValues(t, 1, first[tracing.AttrAttempt].AsInt64())
	require.Equal(t, "retry", first[tracing.AttrOutcome].AsString())
	require.EqualValues(t, 503, first[tracing.AttrStatus].AsInt64())
	require.EqualValues(t, 2, second[tracing.AttrAttempt].AsInt64())
	require.Equal(t, "delivered", second[tracing.AttrOutcome].AsString())
	require.EqualValues(t, 200, second[tracing.AttrStatus].AsInt64())
	require.Contains(t, second, tracing.AttrDurationMS)

	// The partner that asked gets each attempt's own traceparent.
	reqs := traced.Requests()
	require.Len(t, reqs, 2)
	sent := map[string]bool{}
	for _, r := range reqs {
		sent[r.Header.Get("Traceparent")] = true
	}
	for _, a := range byDelivery[tracedID] {
		require.True(t, sent[tracing.FormatTraceParent(a.SpanContext)], "traceparent of attempt %v not sent", a.SpanContext.SpanID())
	}
	for _, r := range quiet.Requests() {
		require.Empty(t, r.Header.Get("Traceparent"))
	}
	noSecrets(t, exp.GetSpans())
}

// A batch makes one intake span per event, and each bundled delivery's
// attempt links to its own event's span.
func TestSpans_BatchIntake(t *testing.T) {
	tr, exp := setup(t)
	traced, quiet := stacktest.NewPartner(t), stacktest.NewPartner(t)
	yaml := strings.NewReplacer("TRACED", traced.URL, "QUIET", quiet.URL).Replace(tracedYAML)
	s := stacktest.New(t, yaml, stacktest.Options{Tracer: tr})

	one := strings.ReplaceAll(eventJSON, "\n  ", "")
	body := strings.Replace(one, "EVID", "evt-b-1", 1) + "\n" + strings.Replace(one, "EVID", "evt-b-2", 1) + "\n"
	code, out := s.Post(t, "/v1/events/batch", "application/x-ndjson", body)
	require.Equal(t, http.StatusOK, code, "%v", out)
	attempts := waitSpans(t, exp, tracing.SpanAttempt, 4)
	// A repeat's intake says so.
	code, out = s.Post(t, "/v1/events", "application/json", strings.Replace(one, "EVID", "evt-b-1", 1))
	require.Equal(t, http.StatusOK, code, "%v", out)
	intakes := byName(exp.GetSpans(), tracing.SpanIntake)
	require.Len(t, intakes, 3)
	spanOf := map[string]trace.SpanContext{}
	results := map[string]int{}
	for _, in := range intakes {
		a := attrs(in)
		results[a[tracing.AttrResult].AsString()]++
		if a[tracing.AttrResult].AsString() == tracing.ResultAccepted {
			spanOf[a[tracing.AttrEventID].AsString()] = in.SpanContext
		}
	}
	require.Equal(t, map[string]int{tracing.ResultAccepted: 2, tracing.ResultDuplicate: 1}, results)
	for _, a := range attempts {
		var event string
		for _, id := range []string{"evt-b-1", "evt-b-2"} {
			for _, p := range []string{"traced", "quiet"} {
				if wire.DeliveryID(id, p) == attrs(a)[tracing.AttrDeliveryID].AsString() {
					event = id
				}
			}
		}
		require.NotEmpty(t, event)
		require.Len(t, a.Links, 1)
		require.Equal(t, spanOf[event].SpanID(), a.Links[0].SpanContext.SpanID(), "attempt of %s", event)
	}
	noSecrets(t, exp.GetSpans())
}

// The task in Redis carries the intake span's traceparent; with tracing
// off it carries none and keeps the form older workers read.
func TestSpans_TaskCarriesTraceParent(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[on], func(t *testing.T) {
			var tr *tracing.Tracer
			var exp *tracetest.InMemoryExporter
			if on {
				tr, exp = setup(t)
			}
			p := stacktest.NewPartner(t)
			s := stacktest.New(t, strings.NewReplacer("TRACED", p.URL, "QUIET", p.URL).Replace(tracedYAML),
				stacktest.Options{Tracer: tr, NoWorker: true})
			code, _ := s.Post(t, "/v1/events", "application/json", strings.Replace(eventJSON, "EVID", "evt-task", 1))
			require.Equal(t, http.StatusAccepted, code)

			insp := asynq.NewInspectorFromRedisClient(s.Redis)
			tasks, err := insp.ListPendingTasks(wire.QueueDefault)
			require.NoError(t, err)
			require.Len(t, tasks, 2)
			for _, task := range tasks {
				pl, err := wire.DecodePayload(task.Payload)
				require.NoError(t, err)
				if !on {
					require.Empty(t, pl.TraceParent)
					require.EqualValues(t, 0x01, task.Payload[0], "form 1, as before tracing")
					continue
				}
				intakes := byName(exp.GetSpans(), tracing.SpanIntake)
				require.Len(t, intakes, 1)
				require.Equal(t, tracing.FormatTraceParent(intakes[0].SpanContext), pl.TraceParent)
			}
		})
	}
}

// A replay has a span of its own, and the replayed delivery's attempt
// links to it.
func TestSpans_Replay(t *testing.T) {
	tr, exp := setup(t)
	var ok atomic.Bool
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		if ok.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
	}
	s := stacktest.New(t, strings.NewReplacer("TRACED", p.URL, "QUIET", p.URL).Replace(tracedYAML), stacktest.Options{Tracer: tr})
	code, _ := s.Post(t, "/v1/events", "application/json", strings.Replace(eventJSON, "EVID", "evt-replay", 1))
	require.Equal(t, http.StatusAccepted, code)
	s.WaitDLQSize(t, "traced", 1, 10*time.Second)
	s.WaitDLQSize(t, "quiet", 1, 10*time.Second)

	ok.Store(true)
	dlq, err := ops.NewDLQ(ops.DLQConfig{Redis: s.Redis, Config: s.Live, Tracer: tr})
	require.NoError(t, err)
	res, err := dlq.Replay(context.Background(), ops.Selection{Partner: "traced"}, ops.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, res.Enqueued)
	id := wire.DeliveryID("evt-replay", "traced")
	s.WaitStatus(t, id, retry.StatusDelivered, 10*time.Second)

	replays := byName(exp.GetSpans(), tracing.SpanReplay)
	require.Len(t, replays, 1)
	ra := attrs(replays[0])
	require.Equal(t, []string{"traced"}, ra[tracing.AttrPartners].AsStringSlice())
	require.EqualValues(t, 1, ra[tracing.AttrSelected].AsInt64())
	require.EqualValues(t, 1, ra[tracing.AttrEnqueued].AsInt64())
	require.False(t, ra[tracing.AttrDryRun].AsBool())

	var replayed *tracetest.SpanStub
	for _, a := range waitSpans(t, exp, tracing.SpanAttempt, 3) {
		if attrs(a)[tracing.AttrDeliveryID].AsString() == id && attrs(a)[tracing.AttrOutcome].AsString() == "delivered" {
			replayed = &a
		}
	}
	require.NotNil(t, replayed)
	require.EqualValues(t, 1, attrs(*replayed)[tracing.AttrReplay].AsInt64())
	require.Len(t, replayed.Links, 1)
	require.Equal(t, replays[0].SpanContext.SpanID(), replayed.Links[0].SpanContext.SpanID())
	noSecrets(t, exp.GetSpans())
}

// A POST that carries a traceparent gets its intake span as a child of
// the caller's span, on both servers of the API.
func TestSpans_IntakeJoinsCallerTrace(t *testing.T) {
	const caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, tt := range stacktest.Transports {
		t.Run(tt.Name, func(t *testing.T) {
			tr, exp := setup(t)
			p := stacktest.NewPartner(t)
			s := stacktest.New(t, strings.NewReplacer("TRACED", p.URL, "QUIET", p.URL).Replace(tracedYAML),
				stacktest.Options{Tracer: tr, NoWorker: true, NetHTTP: tt.NetHTTP})
			one := strings.ReplaceAll(eventJSON, "\n  ", "")
			for path, body := range map[string]string{
				"/v1/events":       strings.Replace(one, "EVID", "evt-caller-1", 1),
				"/v1/events/batch": strings.Replace(one, "EVID", "evt-caller-2", 1) + "\n",
			} {
				req, err := http.NewRequest(http.MethodPost, s.API.URL+path, strings.NewReader(body))
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+stacktest.APIKey)
				req.Header.Set("Content-Type", map[bool]string{true: "application/x-ndjson", false: "application/json"}[strings.HasSuffix(path, "batch")])
				req.Header.Set("Traceparent", caller)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				_ = resp.Body.Close()
				require.Less(t, resp.StatusCode, 300, path)
			}
			intakes := byName(exp.GetSpans(), tracing.SpanIntake)
			require.Len(t, intakes, 2)
			for _, in := range intakes {
				require.Equal(t, "0af7651916cd43dd8448eb211c80319c", in.SpanContext.TraceID().String())
				require.Equal(t, "b7ad6b7169203331", in.Parent.SpanID().String())
				require.True(t, in.Parent.IsRemote())
			}
		})
	}
}
