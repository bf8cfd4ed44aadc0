//! Prometheus metrics (`GET /metrics`, text exposition format): requests and their latency per route and status,
//! the queue, the running batch, rows per adapter, generated tokens (tokens/s is `rate()` of the counter) and the
//! loaded adapters.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdapterLabel {
    pub adapter: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn rows_histogram() -> Histogram {
    // 1 … 512 rows.
    Histogram::new(exponential_buckets(1.0, 2.0, 10))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RouteLabels, Counter>,
    pub latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    pub queue_depth: Gauge,
    pub running_rows: Gauge,
    pub loaded_adapters: Gauge,
    pub step_rows: Histogram,
    pub prefill_rows: Histogram,
    pub adapter_rows: Family<AdapterLabel, Counter>,
    pub tokens: Counter,
    pub abandoned: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("dept");
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let queue_depth = Gauge::default();
        let running_rows = Gauge::default();
        let loaded_adapters = Gauge::default();
        let step_rows = rows_histogram();
        let prefill_rows = rows_histogram();
        let adapter_rows = Family::<AdapterLabel, Counter>::default();
        let tokens = Counter::default();
        let abandoned = Counter::default();
        registry.register(
            "requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer, by route",
            latency.clone(),
        );
        registry.register(
            "queue_depth",
            "Generation requests waiting to run",
            queue_depth.clone(),
        );
        registry.register(
            "running_rows",
            "Rows in the running batch",
            running_rows.clone(),
        );
        registry.register(
            "loaded_adapters",
            "Adapters loaded",
            loaded_adapters.clone(),
        );
        registry.register(
            "step_rows",
            "Rows advanced together by one decoding step",
            step_rows.clone(),
        );
        registry.register(
            "prefill_rows",
            "Rows encoded together when they join the running batch",
            prefill_rows.clone(),
        );
        registry.register(
            "adapter_rows",
            "Rows decoded, by adapter",
            adapter_rows.clone(),
        );
        registry.register("generated_tokens", "Tokens generated", tokens.clone());
        registry.register(
            "abandoned_rows",
            "Requests dropped because their client hung up or timed out",
            abandoned.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            queue_depth,
            running_rows,
            loaded_adapters,
            step_rows,
            prefill_rows,
            adapter_rows,
            tokens,
            abandoned,
        }
    }

    pub fn rows_for(&self, adapter: &str) {
        self.adapter_rows
            .get_or_create(&AdapterLabel {
                adapter: adapter.to_string(),
            })
            .inc();
    }

    pub fn answered(&self, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabel {
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
