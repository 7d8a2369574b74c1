//! The import benchmark: `cargo bench -p evalgate --bench golden_import`.
//!
//! Writes a 1 GiB event log into a temporary folder — conversations of 16 events (messages and
//! tool calls, interleaved with the other conversations' as a live log is), each line carrying
//! the request metadata a platform logs besides what a case needs — and imports it twice with
//! the release `evalgate`:
//!
//! 1. the conversations that went wrong, picked out with `--conversation` (100 of them): the
//!    whole log is read and checked, only those are kept;
//! 2. every conversation (about 50,000 cases).
//!
//! For each it prints wall time, throughput in MB/s of log read and the peak resident memory of
//! the `evalgate` process (its own `wait4` rusage). Figures only: nothing here asserts a time.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

const TARGET_BYTES: u64 = 1024 * 1024 * 1024;
/// Conversations open at once in the log (their events interleave).
const OPEN: usize = 64;

/// Wall seconds, peak resident kilobytes and exit code of a child, from its own rusage.
// The child is reaped by `wait4` (for its own rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run(args: &[&str]) -> (f64, i64, i32) {
    let started = Instant::now();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_evalgate"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run evalgate");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: wait4 writes the exit status and a full rusage of the child it waited for.
    let usage = unsafe {
        libc::wait4(pid, &mut status, 0, usage.as_mut_ptr());
        usage.assume_init()
    };
    let wall = started.elapsed().as_secs_f64();
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    (wall, usage.ru_maxrss, code)
}

fn meta(i: u64, conv: u64) -> String {
    format!(
        r#""meta": {{"requestId": "req-{i:016x}-{conv:08x}", "tenant": "northwind-goods", "region": "eu-west-1", "model": "claude-sonnet-4-5-20250929", "promptVersion": "1.5", "channel": "web-chat", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36", "trace": "{:032x}", "latencyMs": {}, "labels": ["refunds", "tier-2", "eu", "web"], "flags": {{"betaTools": false, "shadow": false, "sampled": true}}, "build": "agent-runtime 4.12.3 (2026-02-27, 9f3c2e1)", "notes": "{}"}}"#,
        u128::from(conv) * 0x9e37_79b9_7f4a_7c15 + u128::from(i),
        200 + (i * 37) % 1800,
        "x".repeat(300)
    )
}

/// The 16 events of conversation `conv`, as lines.
fn conversation(conv: u64, at: &mut u64) -> Vec<String> {
    let id = format!("conv-{conv:07}");
    let order = format!("A{}", 1000 + conv % 90_000);
    let mut out = Vec::with_capacity(16);
    let mut n = 0u64;
    let mut time = || {
        *at += 1;
        format!(
            "2026-03-{:02}T{:02}:{:02}:{:02}Z",
            1 + (*at / 86_400) % 28,
            (*at / 3600) % 24,
            (*at / 60) % 60,
            *at % 60
        )
    };
    let msg = |role: &str, content: String, out: &mut Vec<String>, n: &mut u64, t: String| {
        *n += 1;
        out.push(format!(
            r#"{{"type": "message", "conversation": "{id}", "role": "{role}", "content": "{content}", "at": "{t}", {}}}"#,
            meta(*n, conv)
        ));
    };
    let call = |tool: &str, args: String, result: String, out: &mut Vec<String>, n: &mut u64, t: String| {
        *n += 1;
        out.push(format!(
            r#"{{"type": "tool_call", "id": "call_{conv}_{n}", "conversation": "{id}", "tool": "{tool}", "args": {args}, "result": {result}, "startedAt": "{t}", "endedAt": "{t}", "status": "ok", "tokensIn": 1900, "tokensOut": 24, "spanId": "{:016x}", {}}}"#,
            conv * 16 + *n,
            meta(*n, conv)
        ));
    };
    let lookup = format!(r#"{{"order_id": "{order}"}}"#);
    let order_json = format!(
        r#"{{"order_id": "{order}", "status": "delivered", "delivered_days_ago": {}, "total": 42.0, "currency": "EUR", "items": [{{"sku": "MUG-SET-4", "name": "Stoneware mug set", "price": 42.0, "qty": 1}}], "refunds": []}}"#,
        conv % 40
    );
    msg(
        "user",
        format!("Hi, my order {order} arrived and two mugs are broken. Can I get a refund?"),
        &mut out,
        &mut n,
        time(),
    );
    call("lookup_order", lookup.clone(), order_json.clone(), &mut out, &mut n, time());
    msg(
        "assistant",
        format!("I'm sorry about that. Order {order} was delivered recently; shall I refund the full 42.00 EUR?"),
        &mut out,
        &mut n,
        time(),
    );
    msg("user", "Yes please, to my card.".to_owned(), &mut out, &mut n, time());
    for _ in 0..4 {
        // The agent checks the order again before and after the refund, as some agents do.
        call("lookup_order", lookup.clone(), order_json.clone(), &mut out, &mut n, time());
    }
    call(
        "refund_order",
        format!(r#"{{"order_id": "{order}", "reason": "damaged", "amount": 42.0}}"#),
        r#"{"refund_id": "RF-1", "status": "refunded", "amount": 42.0, "currency": "EUR"}"#.to_owned(),
        &mut out,
        &mut n,
        time(),
    );
    for _ in 0..3 {
        call("lookup_order", lookup.clone(), order_json.clone(), &mut out, &mut n, time());
    }
    msg(
        "assistant",
        format!("Done: 42.00 EUR for order {order} will reach your card within 5–7 business days."),
        &mut out,
        &mut n,
        time(),
    );
    msg("user", "Thanks! Will I get an e-mail when it arrives?".to_owned(), &mut out, &mut n, time());
    call("lookup_order", lookup.clone(), order_json.clone(), &mut out, &mut n, time());
    msg(
        "assistant",
        "Yes: your bank will show it, and we send no separate e-mail. Anything else?".to_owned(),
        &mut out,
        &mut n,
        time(),
    );
    out
}

/// Writes the log; returns its size and the number of conversations.
fn write_log(path: &Path) -> (u64, u64) {
    let mut w = BufWriter::with_capacity(8 << 20, std::fs::File::create(path).expect("create the log"));
    let mut bytes = 0u64;
    let mut next = 0u64;
    let mut at = 0u64;
    // OPEN conversations at a time, their events interleaved round-robin.
    let mut open: Vec<std::collections::VecDeque<String>> = Vec::new();
    while bytes < TARGET_BYTES || !open.is_empty() {
        while bytes < TARGET_BYTES && open.len() < OPEN {
            open.push(conversation(next, &mut at).into());
            next += 1;
        }
        open.retain_mut(|q| match q.pop_front() {
            Some(line) => {
                bytes += line.len() as u64 + 1;
                w.write_all(line.as_bytes()).expect("write");
                w.write_all(b"\n").expect("write");
                true
            }
            None => false,
        });
    }
    w.flush().expect("flush");
    (bytes, next)
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let log = tmp.path().join("events.jsonl");
    let started = Instant::now();
    let (bytes, conversations) = write_log(&log);
    let mb = bytes as f64 / 1e6;
    println!(
        "evalgate golden import benchmark: {:.0} MiB event log, {conversations} conversations of 16 events ({:.1} s to write)",
        bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    let log_arg = log.display().to_string();

    let picked: Vec<String> = (0..100).map(|i| format!("conv-{:07}", i * (conversations / 100))).collect();
    let out = tmp.path().join("picked");
    let out_arg = out.display().to_string();
    let mut args = vec!["golden", "import", &log_arg, "--out", &out_arg];
    for p in &picked {
        args.extend(["--conversation", p.as_str()]);
    }
    let (wall, rss, code) = run(&args);
    assert_eq!(code, 0, "the import of 100 conversations failed");
    println!(
        "  100 conversations picked: {wall:.1} s, {:.0} MB/s, peak memory {:.1} MiB",
        mb / wall,
        rss as f64 / 1024.0
    );

    let out = tmp.path().join("all");
    let out_arg = out.display().to_string();
    let (wall, rss, code) = run(&["golden", "import", &log_arg, "--out", &out_arg]);
    let written = std::fs::metadata(out.join("cases.jsonl")).map(|m| m.len()).unwrap_or(0);
    println!(
        "  every conversation:       {wall:.1} s, {:.0} MB/s, peak memory {:.1} MiB, exit {code}, cases.jsonl {:.0} MiB",
        mb / wall,
        rss as f64 / 1024.0,
        written as f64 / 1048576.0
    );
}
