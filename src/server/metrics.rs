//! Prometheus metrics through the `prometheus` client crate (text exposition format 0.0.4).

use actix_web::http::StatusCode;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, TextEncoder,
};

/// Latency buckets in seconds: scoring one customer takes tens of microseconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// The server's metrics, registered in their own `prometheus::Registry`.
pub struct Metrics {
    registry: prometheus::Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    scored: IntCounterVec,
    model_info: IntGaugeVec,
    loaded_at: GaugeVec,
    reload_failures: IntCounter,
    store: [IntCounter; 3],
    store_queue: IntGauge,
    store_up: IntGauge,
    drift_psi: GaugeVec,
    drift_status: IntGaugeVec,
    performance_status: IntGaugeVec,
    challenger: ChallengerMetrics,
}

/// The challengers' metrics (see [`challenger_metrics`]).
struct ChallengerMetrics {
    shadow: [IntCounter; 3],
    shadow_queue: IntGauge,
    canary: IntCounterVec,
    info: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Register a collector; names and labels are constants, so a failure is a programming error.
fn register<C: prometheus::core::Collector + Clone + 'static>(r: &prometheus::Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric names are unique constants");
    c
}

impl Metrics {
    /// All metric families, registered and empty.
    pub fn new() -> Metrics {
        let r = prometheus::Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let int_gauge = |name: &str, help: &str, labels: &[&str]| {
            register(
                &r,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let requests = counter(
            "churn_http_requests_total",
            "HTTP requests by route and status.",
            &["route", "status"],
        );
        let scored = counter(
            "churn_scored_customers_total",
            "Customers scored by model and risk band.",
            &["model", "risk_band"],
        );
        let latency = register(
            &r,
            HistogramVec::new(
                HistogramOpts::new(
                    "churn_http_request_duration_seconds",
                    "Request latency by route.",
                )
                .buckets(BUCKETS.to_vec()),
                &["route"],
            )
            .expect("valid metric"),
        );
        let model_info = int_gauge(
            "churn_model_info",
            "Models being served (value 1) with their versions.",
            &["model", "version"],
        );
        let loaded_at = register(
            &r,
            GaugeVec::new(
                Opts::new(
                    "churn_model_loaded_timestamp_seconds",
                    "When each model was loaded.",
                ),
                &["model"],
            )
            .expect("valid metric"),
        );
        let reload_failures = register(
            &r,
            IntCounter::new(
                "churn_reload_failures_total",
                "Bundles that failed to load on reload.",
            )
            .expect("valid metric"),
        );
        let (store, store_queue, store_up) = store_metrics(&r);
        let drift_psi = register(
            &r,
            GaugeVec::new(
                Opts::new(
                    "churn_drift_psi",
                    "PSI of each input against training, from the last evaluation (GET /v1/evaluation).",
                ),
                &["model", "input"],
            )
            .expect("valid metric"),
        );
        let drift_status = int_gauge(
            "churn_drift_status",
            "Overall drift of the last evaluation: 0 stable, 1 warning, 2 alarm.",
            &["model"],
        );
        let performance_status = int_gauge(
            "churn_performance_status",
            "Realised AUC against the expected in the last evaluation (control group): 0 stable, 1 warning, 2 alarm.",
            &["model"],
        );
        let challenger = challenger_metrics(&r);
        Metrics {
            challenger,
            drift_psi,
            drift_status,
            performance_status,
            store,
            store_queue,
            store_up,
            registry: r,
            requests,
            latency,
            scored,
            model_info,
            loaded_at,
            reload_failures,
        }
    }

    /// Count one finished request.
    pub fn observe(&self, route: &str, status: StatusCode, secs: f64) {
        self.requests
            .with_label_values(&[route, status.as_str()])
            .inc();
        self.latency.with_label_values(&[route]).observe(secs);
    }

    /// Count customers scored by `model` in one risk band.
    pub fn scored(&self, model: &str, band: &str, count: u64) {
        if count > 0 {
            self.scored.with_label_values(&[model, band]).inc_by(count);
        }
    }

    /// Record the drift of `model`'s last evaluation.
    pub fn drift(&self, model: &str, d: &crate::evaluate::drift::DriftReport) {
        for x in d.inputs.iter().chain(&d.segment_mix).chain([&d.score]) {
            self.drift_psi
                .with_label_values(&[model, x.name.as_str()])
                .set(x.psi);
        }
        self.drift_status
            .with_label_values(&[model])
            .set(d.status.level());
    }

    /// Record an evaluation's performance check.
    pub fn performance(&self, model: &str, p: &crate::evaluate::performance::PerformanceCheck) {
        self.performance_status
            .with_label_values(&[model])
            .set(p.status.level());
    }

    /// Count customers of `model` answered by its canary challenger `version`.
    pub fn canary(&self, model: &str, version: &str, count: u64) {
        if count > 0 {
            self.challenger
                .canary
                .with_label_values(&[model, version])
                .inc_by(count);
        }
    }

    /// Publish the shadow queue's counters (totals since start) and depth.
    pub fn shadow(&self, scored: u64, dropped: u64, failed: u64, queued: usize) {
        let m = &self.challenger;
        for (c, v) in m.shadow.iter().zip([scored, dropped, failed]) {
            c.inc_by(v.saturating_sub(c.get()));
        }
        m.shadow_queue.set(queued as i64);
    }

    /// The challengers loaded now: (model, version, mode) each.
    pub fn challengers<'a>(&self, list: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) {
        self.challenger.info.reset();
        for (model, version, mode) in list {
            self.challenger
                .info
                .with_label_values(&[model, version, mode])
                .set(1);
        }
    }

    /// Count bundles that failed on a reload.
    pub fn reload_failed(&self, n: usize) {
        self.reload_failures.inc_by(n as u64);
    }

    /// The text exposition of every metric; model gauges reflect `models` (name, version, load
    /// time in Unix seconds of every served model), store metrics `log`.
    pub fn render<'a>(
        &self,
        models: impl IntoIterator<Item = (&'a str, &'a str, f64)>,
        log: Option<&crate::store::PredictionLog>,
    ) -> String {
        if let Some(log) = log {
            use std::sync::atomic::Ordering::Relaxed;
            let s = log.stats();
            for (c, v) in self.store.iter().zip([&s.written, &s.dropped, &s.failed]) {
                c.inc_by(v.load(Relaxed).saturating_sub(c.get()));
            }
            self.store_queue.set(s.queued.load(Relaxed).max(0));
            self.store_up.set(!log.health().failing() as i64);
        }
        self.model_info.reset();
        self.loaded_at.reset();
        for (name, version, loaded_at) in models {
            self.model_info.with_label_values(&[name, version]).set(1);
            self.loaded_at.with_label_values(&[name]).set(loaded_at);
        }
        let mut out = Vec::new();
        // encoding into a Vec cannot fail for metrics built from valid names
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The prediction store's metrics: written / dropped / failed counters, queue depth, up.
fn store_metrics(r: &prometheus::Registry) -> ([IntCounter; 3], IntGauge, IntGauge) {
    let store = [
        (
            "churn_store_written_total",
            "Prediction records written to the store.",
        ),
        (
            "churn_store_dropped_total",
            "Prediction records dropped because the store queue was full.",
        ),
        (
            "churn_store_failed_total",
            "Prediction records lost to failed store inserts.",
        ),
    ]
    .map(|(name, help)| register(r, IntCounter::new(name, help).expect("valid metric")));
    let store_queue = register(
        r,
        IntGauge::new(
            "churn_store_queue_depth",
            "Prediction records waiting for the writer.",
        )
        .expect("valid metric"),
    );
    let store_up = register(
        r,
        IntGauge::new(
            "churn_store_up",
            "1 when the last store insert succeeded (0 also when there is no store).",
        )
        .expect("valid metric"),
    );
    (store, store_queue, store_up)
}

/// The challengers' metrics: the shadow queue's scored / dropped / failed counters and depth,
/// the canary's answers, the challengers loaded.
fn challenger_metrics(r: &prometheus::Registry) -> ChallengerMetrics {
    let counters = [
        (
            "churn_shadow_scored_total",
            "Customers scored by a shadow challenger and queued for the store.",
        ),
        (
            "churn_shadow_dropped_total",
            "Customers not scored by the shadow challenger because its queue was full.",
        ),
        (
            "churn_shadow_failed_total",
            "Customers the shadow challenger could not score or the store queue dropped.",
        ),
    ]
    .map(|(name, help)| register(r, IntCounter::new(name, help).expect("valid metric")));
    let queue = register(
        r,
        IntGauge::new(
            "churn_shadow_queue_depth",
            "Customers waiting for the shadow challenger.",
        )
        .expect("valid metric"),
    );
    let canary = register(
        r,
        IntCounterVec::new(
            Opts::new(
                "churn_canary_answers_total",
                "Customers answered by a model's canary challenger, by model and challenger version.",
            ),
            &["model", "version"],
        )
        .expect("valid metric"),
    );
    let info = register(
        r,
        IntGaugeVec::new(
            Opts::new(
                "churn_challenger_info",
                "Challengers loaded beside their champions (value 1): model, version and mode (shadow or canary).",
            ),
            &["model", "version", "mode"],
        )
        .expect("valid metric"),
    );
    ChallengerMetrics {
        shadow: counters,
        shadow_queue: queue,
        canary,
        info,
    }
}
