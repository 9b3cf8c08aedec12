package metrics

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
)

// TestPromtoolCheckMetrics lints what /metrics serves, with one sample in
// every postback collector, through `promtool check metrics`: the names,
// units, types and help that dashboards and alerts rely on.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (Debian: apt-get install prometheus); /metrics not linted")
	}

	EventsReceived.WithLabelValues("accepted").Inc()
	DeliveryAttempts.WithLabelValues("lint_partner", "delivered").Inc()
	AttemptDuration.WithLabelValues("lint_partner").Observe(0.042)
	Deliveries.WithLabelValues("lint_partner", "delivered").Inc()
	EnqueueToDelivery.WithLabelValues("lint_partner").Observe(1.5)
	DLQSize.WithLabelValues("lint_partner").Set(3)
	QueuePending.Set(7)
	CircuitOpen.WithLabelValues("lint_partner").Set(0)

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
