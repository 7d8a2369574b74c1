//! The engine benchmark: `cargo bench -p evalgate --bench eval`.
//!
//! 200 cases, base and head, against a fake provider that answers every call after 50 ms, at
//! concurrency 16. Prints wall time against the ideal `calls × 0.05 s ÷ 16`, the call count of
//! a second run with unchanged inputs (0: everything is cached), CPU time per case run and peak
//! memory of the `evalgate` process. Figures only: nothing here asserts a time.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use support::fake_provider::{FakeProvider, Reply};
use support::scenario::{self, Script, Spec};

const CASES: usize = 200;
const LATENCY: Duration = Duration::from_millis(50);
const CONCURRENCY: usize = 16;

/// CPU seconds and peak resident kilobytes of the children waited for so far.
fn children_usage() -> (f64, i64) {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full rusage into the pointer it is given.
    let u = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, u.as_mut_ptr());
        u.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(u.ru_utime) + secs(u.ru_stime), u.ru_maxrss)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let repo = scenario::repo(&Spec { gate: "{ max_regression_rate: 1.0 }", ..Spec::new(CASES) });
    let script = Arc::new(Script::new());
    let fake = FakeProvider::start(move |req| Reply::Slow(LATENCY, Box::new(script.reply(req)))).await;
    let db = repo.file("bench.db");
    let concurrency = CONCURRENCY.to_string();

    let (cpu0, _) = children_usage();
    let started = Instant::now();
    let (run, report) = scenario::eval(&repo, Some(&fake), &db, &["--concurrency", &concurrency]).await;
    let wall = started.elapsed().as_secs_f64();
    let (cpu1, peak_kb) = children_usage();
    assert_eq!(run.code, 0, "the benchmark run failed: {}{}", run.stdout, run.stderr);
    let calls = fake.call_count();
    let ideal = calls as f64 * LATENCY.as_secs_f64() / CONCURRENCY as f64;

    let started = Instant::now();
    let (rerun, _) = scenario::eval(&repo, Some(&fake), &db, &["--concurrency", &concurrency]).await;
    let rerun_wall = started.elapsed().as_secs_f64();
    assert_eq!(rerun.code, 0, "the second run failed: {}", rerun.stderr);
    let second_calls = fake.call_count() - calls;

    let case_runs = 2 * CASES;
    println!(
        "evalgate eval benchmark: {CASES} cases x 2 sides, fake provider at {} ms, concurrency {CONCURRENCY}",
        LATENCY.as_millis()
    );
    println!("  model calls:            {calls} (report: {})", report["calls"]["model_calls"]);
    println!("  peak calls in flight:   {}", fake.max_in_flight());
    println!("  wall time:              {wall:.2} s");
    println!("  ideal (calls x 0.05/16): {ideal:.2} s");
    println!("  wall / ideal:           {:.3}", wall / ideal);
    println!("  second run:             {second_calls} model calls, {rerun_wall:.2} s");
    println!(
        "  CPU per case run:       {:.2} ms ({:.2} s for {case_runs} case runs)",
        (cpu1 - cpu0) * 1000.0 / case_runs as f64,
        cpu1 - cpu0
    );
    println!("  peak memory (evalgate): {:.1} MiB", peak_kb as f64 / 1024.0);
}
