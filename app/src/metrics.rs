//! Counters for `GET /metrics`, in Prometheus' text format.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub deliveries_accepted: AtomicU64,
    pub deliveries_duplicate: AtomicU64,
    pub deliveries_ignored: AtomicU64,
    pub signature_failures: AtomicU64,
    pub jobs_done: AtomicU64,
    pub jobs_retried: AtomicU64,
    pub jobs_failed: AtomicU64,
    pub check_runs_created: AtomicU64,
    pub evaluations_started: AtomicU64,
    pub evaluations_completed: AtomicU64,
}

impl Metrics {
    pub fn inc(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, pending_jobs: Option<i64>) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"));
        };
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter("evalgate_deliveries_accepted_total", "Webhook deliveries stored.", g(&self.deliveries_accepted));
        counter(
            "evalgate_deliveries_duplicate_total",
            "Deliveries whose id was seen before.",
            g(&self.deliveries_duplicate),
        );
        counter(
            "evalgate_deliveries_ignored_total",
            "Deliveries of events or actions not handled.",
            g(&self.deliveries_ignored),
        );
        counter(
            "evalgate_signature_failures_total",
            "Deliveries refused for a bad or missing signature.",
            g(&self.signature_failures),
        );
        counter("evalgate_jobs_done_total", "Jobs finished.", g(&self.jobs_done));
        counter("evalgate_jobs_retried_total", "Job attempts that failed and will be retried.", g(&self.jobs_retried));
        counter("evalgate_jobs_failed_total", "Jobs that failed for good.", g(&self.jobs_failed));
        counter("evalgate_check_runs_created_total", "Check runs created.", g(&self.check_runs_created));
        counter("evalgate_evaluations_started_total", "Gate evaluations started.", g(&self.evaluations_started));
        counter("evalgate_evaluations_completed_total", "Gate evaluations completed.", g(&self.evaluations_completed));
        if let Some(p) = pending_jobs {
            out.push_str(&format!("# HELP evalgate_jobs_pending Jobs queued or running.\n# TYPE evalgate_jobs_pending gauge\nevalgate_jobs_pending {p}\n"));
        }
        out
    }
}
