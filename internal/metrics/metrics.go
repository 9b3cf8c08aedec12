// Package metrics holds postback's Prometheus collectors, under the names
// dashboards and alerts rely on. They are registered on Registry, which /metrics serves.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds every postback collector plus the Go and process ones.
var Registry = prometheus.NewRegistry()

var (
	// EventsReceived counts events by result: accepted, duplicate,
	// rejected (invalid) or unavailable (Redis did not confirm the store).
	EventsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postback_events_received_total",
		Help: "Events received by the API or client, by result.",
	}, []string{"result"})

	// FieldsDropped counts the optional fields intake dropped from the
	// events it stored, by field ("user.email"): once per field of each
	// stored event whose value was not in its form once normalised (see
	// event.Normalize). A duplicate stores nothing and counts nothing.
	FieldsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postback_event_fields_dropped_total",
		Help: "Optional fields dropped from stored events because their value was invalid, by field.",
	}, []string{"field"})

	// DeliveryAttempts counts attempts by partner and outcome (delivered,
	// retry, rejected, blocked, render, exhausted, deferred, skipped, duplicate).
	DeliveryAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postback_delivery_attempts_total",
		Help: "Delivery attempts by partner and outcome.",
	}, []string{"partner", "outcome"})

	// AttemptDuration is the HTTP time of one attempt.
	AttemptDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "postback_delivery_attempt_duration_seconds",
		Help:    "Duration of one delivery attempt (the HTTP exchange).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"partner"})

	// Deliveries counts deliveries reaching a final state by result
	// (delivered, duplicate, dead, skipped).
	Deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postback_deliveries_total",
		Help: "Deliveries that reached a final state, by partner and result.",
	}, []string{"partner", "result"})

	// EnqueueToDelivery is the time from first enqueue to the partner's
	// success answer.
	EnqueueToDelivery = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "postback_enqueue_to_delivery_seconds",
		Help:    "Time from enqueue to successful delivery.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 5, 30, 60, 300, 1800, 3600, 21600, 86400},
	}, []string{"partner"})

	// DLQSize is the number of dead letters per partner (refreshed by the
	// worker periodically).
	DLQSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "postback_dlq_size",
		Help: "Dead letters waiting per partner.",
	}, []string{"partner"})

	// QueuePending is the number of delivery tasks waiting to run. It is
	// read from asynq's queue sizes, so a bundle counts once, however many
	// deliveries it carries; `postback stats` counts deliveries.
	QueuePending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "postback_queue_pending",
		Help: "Delivery tasks waiting in the queues (pending and scheduled retries); a bundle of deliveries enqueued together counts once.",
	})

	// CircuitOpen is 1 while a partner's circuit breaker is open.
	CircuitOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "postback_partner_circuit_open",
		Help: "1 while the partner's circuit breaker is open.",
	}, []string{"partner"})

	// PartnerPaused is 1 while a partner is paused (postback partners
	// pause), refreshed by the worker periodically.
	PartnerPaused = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "postback_partner_paused",
		Help: "1 while the partner is paused: its deliveries are held.",
	}, []string{"partner"})
)

func init() {
	Registry.MustRegister(
		EventsReceived, FieldsDropped, DeliveryAttempts, AttemptDuration, Deliveries, EnqueueToDelivery,
		DLQSize, QueuePending, CircuitOpen, PartnerPaused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
}

// Handler serves the registry in the Prometheus text format.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry})
}
