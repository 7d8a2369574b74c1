//! Counters, gauges and one histogram for `GET /metrics`, in Prometheus' text format. Written by
//! hand: a handful of families, no label cardinality beyond event names and conclusions.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (ms) of the provider-latency histogram's buckets.
const LATENCY_BUCKETS_MS: [f64; 10] =
    [50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0, 30_000.0, 60_000.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS_MS.len()],
    total: u64,
    sum: f64,
}

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
    pub model_calls: AtomicU64,
    pub cached_transcripts: AtomicU64,
    pub cached_votes: AtomicU64,
    pub provider_errors: AtomicU64,
    /// `(family, labels)` → count, for the labelled counters.
    labelled: Mutex<BTreeMap<(&'static str, String), u64>>,
    latency: Mutex<Histogram>,
}

/// What the database says at scrape time.
#[derive(Debug, Default)]
pub struct QueueGauges {
    pub by_state: Vec<(String, i64)>,
    pub oldest_ready_age_secs: Option<f64>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The events counted under their own name in `evalgate_webhooks_total`.
const KNOWN_EVENTS: &[&str] = &[
    "ping",
    "pull_request",
    "check_run",
    "check_suite",
    "issue_comment",
    "installation",
    "installation_repositories",
    "merge_group",
];

impl Metrics {
    pub fn inc(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(&self, c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// `evalgate_webhooks_total{event, outcome}`. The event label is one of the events GitHub
    /// documents that evalgate subscribes to, else `other`: the header is whatever a sender
    /// wrote (signed or not), and an unbounded label set would grow `/metrics` without end.
    pub fn webhook(&self, event: &str, outcome: &str) {
        let event = if KNOWN_EVENTS.contains(&event) { event } else { "other" };
        let labels = format!("event=\"{}\",outcome=\"{}\"", escape(event), escape(outcome));
        *self
            .labelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(("evalgate_webhooks_total", labels))
            .or_default() += 1;
    }

    /// `evalgate_gate_outcomes_total{conclusion}`.
    pub fn gate_outcome(&self, conclusion: &str) {
        let labels = format!("conclusion=\"{}\"", escape(conclusion));
        *self
            .labelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(("evalgate_gate_outcomes_total", labels))
            .or_default() += 1;
    }

    /// One model call's latency.
    pub fn observe_provider_latency(&self, ms: f64) {
        let mut h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        for (i, bound) in LATENCY_BUCKETS_MS.iter().enumerate() {
            if ms <= *bound {
                h.counts[i] += 1;
            }
        }
        h.total += 1;
        h.sum += ms;
    }

    pub fn render(&self, queue: Option<&QueueGauges>, github_ratelimit_remaining: Option<i64>) -> String {
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
        counter("evalgate_model_calls_total", "Model calls made (agent and judge).", g(&self.model_calls));
        counter(
            "evalgate_cache_hits_transcripts_total",
            "Agent transcripts served from the result cache.",
            g(&self.cached_transcripts),
        );
        counter("evalgate_cache_hits_votes_total", "Judge votes served from the result cache.", g(&self.cached_votes));
        counter(
            "evalgate_provider_errors_total",
            "Evaluations stopped by a provider or the budget.",
            g(&self.provider_errors),
        );
        let labelled = self.labelled.lock().unwrap_or_else(|p| p.into_inner());
        let mut family = "";
        for ((name, labels), v) in labelled.iter() {
            if *name != family {
                family = name;
                out.push_str(&format!("# TYPE {name} counter\n"));
            }
            out.push_str(&format!("{name}{{{labels}}} {v}\n"));
        }
        drop(labelled);
        {
            let h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
            out.push_str("# HELP evalgate_provider_latency_ms Latency of model calls, in milliseconds.\n# TYPE evalgate_provider_latency_ms histogram\n");
            for (i, bound) in LATENCY_BUCKETS_MS.iter().enumerate() {
                out.push_str(&format!("evalgate_provider_latency_ms_bucket{{le=\"{bound}\"}} {}\n", h.counts[i]));
            }
            out.push_str(&format!("evalgate_provider_latency_ms_bucket{{le=\"+Inf\"}} {}\n", h.total));
            out.push_str(&format!(
                "evalgate_provider_latency_ms_sum {}\nevalgate_provider_latency_ms_count {}\n",
                h.sum, h.total
            ));
        }
        if let Some(q) = queue {
            let pending: i64 = q.by_state.iter().filter(|(s, _)| s == "queued" || s == "running").map(|(_, n)| n).sum();
            out.push_str(&format!("# HELP evalgate_jobs_pending Jobs queued or running.\n# TYPE evalgate_jobs_pending gauge\nevalgate_jobs_pending {pending}\n"));
            out.push_str("# HELP evalgate_jobs Jobs by state.\n# TYPE evalgate_jobs gauge\n");
            for (state, n) in &q.by_state {
                out.push_str(&format!("evalgate_jobs{{state=\"{}\"}} {n}\n", escape(state)));
            }
            if let Some(age) = q.oldest_ready_age_secs {
                out.push_str(&format!("# HELP evalgate_queue_oldest_age_seconds Age of the oldest job waiting to run.\n# TYPE evalgate_queue_oldest_age_seconds gauge\nevalgate_queue_oldest_age_seconds {age:.3}\n"));
            }
        }
        if let Some(r) = github_ratelimit_remaining {
            out.push_str(&format!("# HELP evalgate_github_ratelimit_remaining GitHub's x-ratelimit-remaining on its latest reply.\n# TYPE evalgate_github_ratelimit_remaining gauge\nevalgate_github_ratelimit_remaining {r}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_counters_and_the_histogram_render_in_prometheus_text() {
        let m = Metrics::default();
        m.webhook("pull_request", "queued");
        m.webhook("pull_request", "queued");
        m.webhook("star", "ignored");
        m.gate_outcome("failure");
        m.observe_provider_latency(70.0);
        m.observe_provider_latency(3_000.0);
        let text = m.render(
            Some(&QueueGauges {
                by_state: vec![("done".into(), 3), ("queued".into(), 1)],
                oldest_ready_age_secs: Some(1.5),
            }),
            Some(4_990),
        );
        assert!(text.contains("evalgate_webhooks_total{event=\"pull_request\",outcome=\"queued\"} 2\n"), "{text}");
        assert!(text.contains("evalgate_webhooks_total{event=\"other\",outcome=\"ignored\"} 1\n"), "{text}");
        assert!(text.contains("evalgate_gate_outcomes_total{conclusion=\"failure\"} 1\n"));
        assert!(text.contains("evalgate_provider_latency_ms_bucket{le=\"100\"} 1\n"));
        assert!(text.contains("evalgate_provider_latency_ms_bucket{le=\"5000\"} 2\n"));
        assert!(text.contains("evalgate_provider_latency_ms_count 2\n"));
        assert!(text.contains("evalgate_jobs_pending 1\n") && text.contains("evalgate_jobs{state=\"done\"} 3\n"));
        assert!(text.contains("evalgate_github_ratelimit_remaining 4990\n"));
    }

    #[test]
    fn any_number_of_made_up_event_names_is_one_label() {
        let m = Metrics::default();
        for i in 0..1_000 {
            m.webhook(&format!("made-up-{i}"), "bad_signature");
        }
        let text = m.render(None, None);
        assert_eq!(text.matches("evalgate_webhooks_total{").count(), 1, "{text}");
        assert!(text.contains("evalgate_webhooks_total{event=\"other\",outcome=\"bad_signature\"} 1000\n"));
    }
}
