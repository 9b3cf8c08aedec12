package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/valyala/fasthttp"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/wire"
)

// benchParallelism times GOMAXPROCS is the number of goroutines that post
// (or enqueue, for the raw asynq baseline) at once in BenchmarkIntake.
const benchParallelism = 8

// benchBatch is the number of events per request of the batch figure.
const benchBatch = 500

const benchYAML = `
api:
  keys: ["${api_key}"]
  max_body_bytes: 4194304
delivery:
  allow_private_networks: true
partners:
  - id: acme_ads
    match: all
    url: "http://127.0.0.1:9/c?click_id={click_id}&sum={revenue}"
`

// benchEvent is a typical event: every id, attribution and revenue.
func benchEvent(id string) string {
	return `{"id":"` + id + `","name":"purchase","timestamp":"2026-11-25T18:31:21Z","app_id":"com.example.game",` +
		`"click_id":"abc123","attribution":{"partner":"acme_ads","campaign_id":"c1","campaign":"winter"},` +
		`"device":{"idfa":"6D92078A-8246-4BA4-AE5B-76104861E7DC","ip":"203.0.113.7","os":"ios","os_version":"18.1","country":"US"},` +
		`"user":{"customer_user_id":"u1","email":"a@example.com"},"revenue":{"amount":"1.99","currency":"USD"},` +
		`"consent":{"granted":true},"params":{"level":"7"}}`
}

// BenchmarkIntake measures events accepted per second by POST /v1/events
// and by POST /v1/events/batch, beside raw asynq Client.Enqueue of a task
// of the same payload size, all from the same number of goroutines on the
// same redis-server, and logs the ratios of the medians over -count runs.
// Every figure is events/s.
//
// http_floor is the ceiling of single: the same POST to a handler that
// only reads and decodes the event and answers a canned receipt, without
// Redis. Raw asynq pays for no HTTP and no JSON decoding, so single's ratio
// to raw is bounded by the floor's.
func BenchmarkIntake(b *testing.B) {
	s := stacktest.New(b, benchYAML, stacktest.Options{NoWorker: true})
	transport := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	httpc := &http.Client{Transport: transport, Timeout: time.Minute}
	defer transport.CloseIdleConnections()
	var seq atomic.Int64
	nonce := time.Now().UnixNano()
	nextID := func() string { return fmt.Sprintf("bench-%d-%d", nonce, seq.Add(1)) }
	post := func(b *testing.B, path, ct string, body []byte, want int) {
		req, _ := http.NewRequest(http.MethodPost, s.API.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+stacktest.APIKey)
		req.Header.Set("Content-Type", ct)
		resp, err := httpc.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			b.Errorf("%s: status %d, want %d", path, resp.StatusCode, want)
		}
	}
	flush := func(b *testing.B) {
		b.Helper()
		if err := s.Redis.FlushDB(context.Background()).Err(); err != nil {
			b.Fatal(err)
		}
	}
	rates := map[string][]float64{}
	measure := func(name string, perOp int, op func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			flush(b)
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					op(b)
				}
			})
			rate := float64(b.N*perOp) / time.Since(start).Seconds()
			b.ReportMetric(rate, "events/s")
			// The function runs again for each b.N the calibration tries:
			// keep the last rate of each of the -count runs.
			if b.N == 1 || len(rates[name]) == 0 {
				rates[name] = append(rates[name], rate)
			} else {
				rates[name][len(rates[name])-1] = rate
			}
		})
	}

	measure("single", 1, func(b *testing.B) {
		post(b, "/v1/events", "application/json", []byte(benchEvent(nextID())), http.StatusAccepted)
	})
	measure("batch", benchBatch, func(b *testing.B) {
		var body strings.Builder
		for range benchBatch {
			body.WriteString(benchEvent(nextID()))
			body.WriteByte('\n')
		}
		post(b, "/v1/events/batch", "application/x-ndjson", []byte(body.String()), http.StatusOK)
	})
	// The baseline: what one delivery task costs asynq alone, with a
	// payload the size of ours (the event plus routing fields).
	raw := asynq.NewClientFromRedisClient(s.Redis)
	payload := []byte(`{"d":"dlv_00000000000000000000000000000000","p":"acme_ads","t":1764095481000,"e":` + benchEvent(nextID()) + `}`)
	measure("asynq_raw", 1, func(b *testing.B) {
		task := asynq.NewTask(wire.TypeDeliver, payload, asynq.Queue(wire.QueueDefault), asynq.MaxRetry(25))
		if _, err := raw.EnqueueContext(context.Background(), task); err != nil {
			b.Error(err)
		}
	})
	// The floor: HTTP and decoding alone, on a server of its own, of the
	// kind Serve runs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	floor := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		if _, err := event.DecodeEvent(c.PostBody(), time.Now()); err != nil {
			b.Error(err)
		}
		c.SetStatusCode(http.StatusAccepted)
		c.SetContentType("application/json")
		c.SetBodyString(`{"event_id":"x","deliveries":[{"id":"dlv_00000000000000000000000000000000","partner":"acme_ads","status":"queued"}]}` + "\n")
	}}
	go func() { _ = floor.Serve(ln) }()
	defer func() { _ = floor.Shutdown() }()
	floorURL := "http://" + ln.Addr().String()
	measure("http_floor", 1, func(b *testing.B) {
		req, _ := http.NewRequest(http.MethodPost, floorURL+"/v1/events", strings.NewReader(benchEvent(nextID())))
		req.Header.Set("Authorization", "Bearer "+stacktest.APIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := httpc.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	})
	med := func(name string) float64 {
		v := slices.Clone(rates[name])
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	if r := med("asynq_raw"); r > 0 && med("single") > 0 && med("batch") > 0 && med("http_floor") > 0 {
		fmt.Printf("intake, %d goroutines, medians of %d runs: single %.0f events/s = %.2fx raw asynq (http floor %.0f = %.2fx); batch(%d) %.0f events/s = %.2fx raw asynq; raw asynq %.0f events/s\n",
			benchParallelism*runtime.GOMAXPROCS(0), len(rates["asynq_raw"]), med("single"), med("single")/r, med("http_floor"), med("http_floor")/r,
			benchBatch, med("batch"), med("batch")/r, r)
	}
}
