package metrics

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// observeOneOfEach gives every postback collector a sample, so that each
// one appears on /metrics.
func observeOneOfEach() {
	EventsReceived.WithLabelValues("accepted").Inc()
	DeliveryAttempts.WithLabelValues("lint_partner", "delivered").Inc()
	AttemptDuration.WithLabelValues("lint_partner").Observe(0.042)
	Deliveries.WithLabelValues("lint_partner", "delivered").Inc()
	EnqueueToDelivery.WithLabelValues("lint_partner").Observe(1.5)
	DLQSize.WithLabelValues("lint_partner").Set(3)
	QueuePending.Set(7)
	CircuitOpen.WithLabelValues("lint_partner").Set(0)
}

// TestPromtoolCheckMetrics lints what /metrics serves, with one sample in
// every postback collector, through `promtool check metrics`: the names,
// units, types and help that dashboards and alerts rely on.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (Debian: apt-get install prometheus); /metrics not linted")
	}
	observeOneOfEach()

	srv := httptest.NewServer(Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s\n%s", resp.Status, body)
	}
	for _, name := range []string{
		"postback_events_received_total", "postback_delivery_attempts_total",
		"postback_delivery_attempt_duration_seconds_bucket", "postback_deliveries_total",
		"postback_enqueue_to_delivery_seconds_bucket", "postback_dlq_size",
		"postback_queue_pending", "postback_partner_circuit_open",
	} {
		if !bytes.Contains(body, []byte("\n"+name)) {
			t.Errorf("/metrics has no %s sample", name)
		}
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("promtool check metrics (%v):\n%s", err, out)
	}
}

// TestDeployUsesServedNames checks that the alerting rules, their tests and
// the Grafana dashboard name only postback series that the registry
// serves, and select them only by labels those series have. A renamed
// metric or label would otherwise leave the alerts silent and their unit
// tests green, since the tests feed the same wrong name.
func TestDeployUsesServedNames(t *testing.T) {
	observeOneOfEach()
	families, err := Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// Series name -> its label names; "instance" and "job" come from the
	// scrape.
	served := map[string][]string{}
	for _, f := range families {
		var labels []string
		if len(f.GetMetric()) > 0 {
			for _, l := range f.GetMetric()[0].GetLabel() {
				labels = append(labels, l.GetName())
			}
		}
		labels = append(labels, "instance", "job")
		served[f.GetName()] = labels
		if f.GetType().String() == "HISTOGRAM" {
			served[f.GetName()+"_bucket"] = append(slices.Clone(labels), "le")
			served[f.GetName()+"_sum"] = labels
			served[f.GetName()+"_count"] = labels
		}
	}

	name := regexp.MustCompile(`\bpostback_[a-z0-9_]*[a-z0-9]`)
	selector := regexp.MustCompile(`\b(postback_[a-z0-9_]*[a-z0-9])\{([^}]*)\}`)
	matcher := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	root := filepath.Join("..", "..", "deploy")
	for _, file := range []string{
		"prometheus/alerts.yml", "prometheus/alerts_test.yml", "grafana/postback.json",
	} {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		// JSON escapes the quotes inside an expression.
		text := strings.ReplaceAll(string(b), `\"`, `"`)
		found := 0
		for _, n := range name.FindAllString(text, -1) {
			found++
			if _, ok := served[n]; !ok {
				t.Errorf("%s: %s is not a series /metrics serves", file, n)
			}
		}
		if found == 0 {
			t.Errorf("%s names no postback series", file)
		}
		for _, m := range selector.FindAllStringSubmatch(text, -1) {
			labels, ok := served[m[1]]
			if !ok {
				continue // reported above
			}
			for _, l := range matcher.FindAllStringSubmatch(m[2], -1) {
				if !slices.Contains(labels, l[1]) {
					t.Errorf("%s: %s has no label %q (it has %v)", file, m[1], l[1], labels)
				}
			}
		}
	}
}
