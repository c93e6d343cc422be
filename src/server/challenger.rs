//! Challengers in serving (issue 34, item 3). The server answers with each model's
//! `champion`; with `--challenger shadow` or `--challenger canary:SHARE`, the version its
//! registry names `challenger` runs beside it:
//!
//! - **shadow**: every scored customer is scored again by the challenger off the response
//!   path — the request hands the customers' inputs to a bounded queue and answers; one
//!   background thread at the lowest CPU priority (nice 19) scores them and stores the answers
//!   in `shadow_predictions` with the challenger's version. At the peak the thread gets almost
//!   no CPU, the queue fills and new customers are dropped and counted
//!   (`churn_shadow_dropped_total`) instead of slowing the champion's answers.
//! - **canary**: a stable share of customers (by a hash of model and customer id) gets the
//!   challenger's answer, recorded with its version like any served answer; the result carries
//!   `model_version`.

use super::metrics::Metrics;
use crate::scoring::Scorer;
use crate::store::{PredictionLog, Store};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

/// How a model's `challenger` version runs beside its champion.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ChallengerMode {
    /// Not loaded (the default).
    #[default]
    Off,
    /// Scored on every request off the response path, stored, never returned.
    Shadow,
    /// This share (0..=1) of customers, by a stable hash of their id, gets its answer.
    Canary(f64),
}

impl std::str::FromStr for ChallengerMode {
    type Err = String;

    /// `off`, `shadow` or `canary:SHARE` (SHARE within 0..=1, e.g. `canary:0.1`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" => Ok(ChallengerMode::Off),
            "shadow" => Ok(ChallengerMode::Shadow),
            t => t
                .strip_prefix("canary:")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| (0.0..=1.0).contains(v))
                .map(ChallengerMode::Canary)
                .ok_or_else(|| {
                    format!("expected off, shadow or canary:SHARE with SHARE in 0..=1, got '{t}'")
                }),
        }
    }
}

impl ChallengerMode {
    /// `off`, `shadow`, `canary` (the `mode` label of the metrics).
    pub fn name(self) -> &'static str {
        match self {
            ChallengerMode::Off => "off",
            ChallengerMode::Shadow => "shadow",
            ChallengerMode::Canary(_) => "canary",
        }
    }
}

/// A model's challenger version, loaded beside its champion.
#[derive(Debug)]
pub struct Challenger {
    /// The scorer.
    pub scorer: Scorer,
}

/// Whether customer `id` of `model` is in the canary share `share`: the first eight bytes of
/// sha256(`canary`, model, id) as a fraction of 2⁶⁴ below `share`. Stable across requests,
/// replicas and restarts; independent of the control group's hash.
pub fn in_canary(model: &str, id: &str, share: f64) -> bool {
    if share <= 0.0 {
        return false;
    }
    let h = Sha256::digest(format!("canary\u{1f}{model}\u{1f}{id}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    (u64::from_be_bytes(b) as f64) < share * 2f64.powi(64)
}

/// The customers of one request for the shadow challenger.
pub struct ShadowJob {
    /// The challenger that scores them.
    pub challenger: Arc<Challenger>,
    /// Model name.
    pub model: String,
    /// The request's id (shared with the champion's records).
    pub request_id: String,
    /// When the champion scored them (Unix ms).
    pub at: i64,
    /// (customer id as text, input as received) per customer.
    pub customers: Vec<(String, String)>,
}

/// Counters of the shadow queue (read by `/metrics`).
#[derive(Debug, Default)]
pub struct ShadowStats {
    /// Customers scored by the challenger and queued for the store.
    pub scored: AtomicU64,
    /// Customers dropped because the shadow queue was full.
    pub dropped: AtomicU64,
    /// Customers the challenger could not score (its inputs differ), or whose answers found the
    /// store's queue half full (the champion's records come first) or full.
    pub failed: AtomicU64,
    /// Customers waiting.
    pub queued: AtomicUsize,
}

/// The bounded queue in front of the shadow thread.
pub struct ShadowQueue {
    tx: mpsc::Sender<ShadowJob>,
    capacity: usize,
    /// Its counters.
    pub stats: Arc<ShadowStats>,
    /// Score requests being answered now.
    busy: Arc<AtomicUsize>,
}

/// Counts one score request as being answered while it lives.
pub struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long the shadow thread waits before looking again whether a worker is free.
const SHADOW_WAIT: std::time::Duration = std::time::Duration::from_micros(500);

/// Scores one shadow job's customers: the HTTP scoring path of the challenger, returning its
/// records (the routes supply it, so the shadow answer is computed exactly as a served one).
pub type ShadowScorer =
    fn(&ShadowJob, &crate::store::IdKey, usize) -> (Vec<crate::store::PredictionRecord>, usize);

impl ShadowQueue {
    /// Start the shadow thread with room for `capacity` customers; records go to `log` (whose
    /// queue holds `store_queue` records; shadow answers take at most half). The thread scores
    /// only while fewer than `workers` score requests are being answered (a worker, and so a
    /// core, is free) and at the lowest CPU priority; a panic while scoring a request counts its
    /// customers as failed and the thread goes on.
    pub fn start(
        (capacity, workers): (usize, usize),
        (store, log, store_queue): (Arc<Store>, Arc<PredictionLog>, usize),
        max_field_bytes: usize,
        score: ShadowScorer,
    ) -> std::io::Result<ShadowQueue> {
        let store_room = (store_queue / 2).max(1) as i64;
        let (tx, rx) = mpsc::channel::<ShadowJob>();
        let stats = Arc::new(ShadowStats::default());
        let counters = stats.clone();
        let busy = Arc::new(AtomicUsize::new(0));
        let in_flight = busy.clone();
        let workers = workers.max(1);
        std::thread::Builder::new()
            .name("churn-shadow".into())
            .spawn(move || {
                lower_priority();
                for job in rx {
                    // at the peak every worker is answering: the queue fills and is counted
                    // rather than the shadow taking a core from the answers
                    while in_flight.load(Ordering::Relaxed) >= workers {
                        std::thread::sleep(SHADOW_WAIT);
                    }
                    let n = job.customers.len();
                    let scored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        score(&job, store.ids(), max_field_bytes)
                    }));
                    counters.queued.fetch_sub(n, Ordering::Relaxed);
                    let (records, mut lost) = scored.unwrap_or_else(|_| {
                        tracing::error!(model = %job.model, "the shadow challenger failed on a request; its customers are counted as failed");
                        (Vec::new(), n)
                    });
                    for rec in records {
                        // the champion's records come first: shadow answers use at most half
                        // of the store's queue
                        let room = log.stats().queued.load(Ordering::Relaxed) < store_room;
                        if room && log.try_log(rec) {
                            counters.scored.fetch_add(1, Ordering::Relaxed);
                        } else {
                            lost += 1;
                        }
                    }
                    counters.failed.fetch_add(lost as u64, Ordering::Relaxed);
                }
            })?;
        Ok(ShadowQueue {
            tx,
            capacity: capacity.max(1),
            stats,
            busy,
        })
    }

    /// Count a score request as being answered until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.busy.clone())
    }

    /// Whether `n` more customers fit now; when not, they are counted as dropped (the route
    /// then skips building the job: at the peak the queue is full, and that work would be
    /// done for nothing on every request).
    pub fn room_for(&self, n: usize) -> bool {
        let room = self.stats.queued.load(Ordering::Relaxed) + n <= self.capacity;
        if !room {
            self.stats.dropped.fetch_add(n as u64, Ordering::Relaxed);
        }
        room
    }

    /// Hand a request's customers to the shadow thread without waiting; when they do not fit
    /// they are dropped and counted. Returns whether they were queued.
    pub fn offer(&self, job: ShadowJob) -> bool {
        let n = job.customers.len();
        let fits = self
            .stats
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                (q + n <= self.capacity).then_some(q + n)
            })
            .is_ok();
        if fits && self.tx.send(job).is_ok() {
            return true;
        }
        if fits {
            self.stats.queued.fetch_sub(n, Ordering::Relaxed);
        }
        self.stats.dropped.fetch_add(n as u64, Ordering::Relaxed);
        false
    }

    /// Publish the counters as metrics.
    pub fn publish(&self, metrics: &Metrics) {
        let s = &self.stats;
        metrics.shadow(
            s.scored.load(Ordering::Relaxed),
            s.dropped.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
            s.queued.load(Ordering::Relaxed),
        );
    }
}

/// Give the calling thread the lowest CPU priority (nice 19): it then runs on what the
/// request workers leave idle. Failing (a platform without per-thread nice values) only logs.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
        tracing::warn!(error = %e, "the shadow thread keeps the normal CPU priority");
    }
}
