//! Audit evidence end to end: the real `evalgate serve` gates a pull request, the evidence API
//! hands its export to the admin only, `evalgate evidence verify` accepts the zip as exported
//! and refuses it once anything in it was changed, and `evalgate evidence export` writes the
//! same kind of zip from the database file directly.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
mod support;

use github_app::{Commits, Harness, PRE_REGISTRATION, REPO};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use support::Run;
use support::scenario::{Plan, Script, Spec};

const BASE: &str = "1111111111111111111111111111111111111111";
const HEAD: &str = "2222222222222222222222222222222222222222";
const TOKEN: &str = "admin-token-for-tests";
const PERIOD: &str = "since=2000-01-01&until=2999-12-31";

/// A server with the admin token whose one pull request's gate has completed.
async fn gated() -> Harness {
    let script = Script::new().head(3, Plan::Fail).base(4, Plan::Fail);
    let h = Harness::start_with(Arc::new(script), &[("EVALGATE_ADMIN_TOKEN", TOKEN)]).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(4) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    assert_eq!(h.pr_opened(1).await, 202);
    let gate = h.completed(HEAD, "evalgate/demo").await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}", gate.title);
    h
}

/// `GET /api/evidence?…` with an optional bearer token: status, headers, body.
async fn get_evidence(h: &Harness, query: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = reqwest::Client::new().get(format!("{}/api/evidence?{query}", h.server.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("evidence request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body").to_vec())
}

fn evalgate(args: &[&std::ffi::OsStr], db: Option<&Path>) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_evalgate"));
    c.args(args).env_remove("EVALGATE_DATABASE_URL");
    if let Some(db) = db {
        c.env("EVALGATE_DATABASE_URL", format!("sqlite://{}", db.display()));
    }
    c.output().expect("run evalgate").into()
}

fn verify(zip: &Path) -> Run {
    evalgate(&["evidence".as_ref(), "verify".as_ref(), zip.as_os_str()], None)
}

fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).expect("member");
            let mut b = Vec::new();
            f.read_to_end(&mut b).expect("read member");
            (f.name().to_owned(), b)
        })
        .collect()
}

fn rezip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in files {
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).expect("start");
        w.write_all(bytes).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

fn text<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a str {
    let bytes = &files.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} in the zip")).1;
    std::str::from_utf8(bytes).expect("utf-8")
}

/// Rewrites one member with `edit` and returns what `evalgate evidence verify` says of the result.
fn tampered(dir: &Path, original: &[u8], name: &str, edit: impl Fn(&str) -> String) -> Run {
    let files: Vec<(String, Vec<u8>)> = unzip(original)
        .into_iter()
        .map(|(n, b)| {
            if n == name {
                let s = String::from_utf8(b).expect("utf-8");
                (n, edit(&s).into_bytes())
            } else {
                (n, b)
            }
        })
        .collect();
    let path = dir.join(format!("tampered-{}.zip", name.replace('/', "_")));
    std::fs::write(&path, rezip(&files)).expect("write zip");
    verify(&path)
}

#[tokio::test]
async fn the_admin_exports_a_period_that_verifies_and_any_tampering_fails() {
    let h = gated().await;

    let (status, _, _) = get_evidence(&h, &format!("repo={REPO}&{PERIOD}"), None).await;
    assert_eq!(status, 401, "no token");
    assert_eq!(get_evidence(&h, "repo=%ZZ&since", None).await.0, 401, "no token, whatever the query");
    let (status, headers, _) = get_evidence(&h, &format!("repo={REPO}&{PERIOD}"), Some("wrong")).await;
    assert_eq!(status, 401, "wrong token");
    assert_eq!(headers.get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    let (status, _, body) =
        get_evidence(&h, &format!("repo={REPO}&since=last-week&until=2999-12-31"), Some(TOKEN)).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).starts_with("since: "), "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = get_evidence(&h, PERIOD, Some(TOKEN)).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).starts_with("repo: "), "{}", String::from_utf8_lossy(&body));

    let (status, headers, zip) = get_evidence(&h, &format!("repo={REPO}&{PERIOD}"), Some(TOKEN)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&zip));
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/zip"));
    let disposition = headers.get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert_eq!(disposition, "attachment; filename=\"evidence-acme-agents-2000-01-01-2999-12-31.zip\"");

    let files = unzip(&zip);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..3], ["MANIFEST", "entries.jsonl", "runs.csv"]);
    let csv = text(&files, "runs.csv");
    let row = csv.lines().nth(1).unwrap_or_else(|| panic!("a run row: {csv}"));
    assert!(row.contains(&format!(",1,{HEAD},{BASE},demo,completed,success,")), "{row}");
    let report = names.iter().find(|n| n.starts_with("reports/")).unwrap_or_else(|| panic!("a report: {names:?}"));
    assert!(text(&files, report).contains("demo"), "the rendered report");
    let entries = text(&files, "entries.jsonl").lines().count();
    let manifest = text(&files, "MANIFEST");
    assert!(manifest.contains(&format!("repo: {REPO}\n")) && manifest.contains(&format!("entries: {entries}\n")));

    let dir = tempfile::tempdir().expect("temp dir");
    let exported = dir.path().join("evidence.zip");
    std::fs::write(&exported, &zip).expect("write zip");
    let run = verify(&exported);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with(&format!("verified: {entries} entries of {REPO}")), "{}", run.stdout);

    // A changed run title: runs.csv no longer matches the MANIFEST.
    let run = tampered(dir.path(), &zip, "runs.csv", |s| s.replace("gate passed", "gate PASSED"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("`runs.csv` does not match its sha256 in MANIFEST"), "{}", run.stdout);
    // A changed report.
    let run = tampered(dir.path(), &zip, report, |s| format!("{s}\nall fine\n"));
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains(&format!("`{report}` does not match")), "{}", run.stdout);
    // An edited MANIFEST: a count that does not match.
    let run = tampered(dir.path(), &zip, "MANIFEST", |s| {
        s.replace(&format!("entries: {entries}\n"), &format!("entries: {}\n", entries + 1))
    });
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains(&format!("MANIFEST says {}", entries + 1)), "{}", run.stdout);
    // A report dropped from the MANIFEST.
    let run = tampered(dir.path(), &zip, "MANIFEST", |s| {
        s.lines().filter(|l| !l.ends_with(report)).map(|l| format!("{l}\n")).collect()
    });
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains(&format!("`{report}` is in the zip but not in MANIFEST")), "{}", run.stdout);
    if entries > 0 {
        // A changed entry: the chain names it.
        let run = tampered(dir.path(), &zip, "entries.jsonl", |s| s.replacen("\"actor\":\"", "\"actor\":\"x", 1));
        assert_eq!(run.code, 1);
        assert!(
            run.stdout.contains("entries.jsonl line 1 (seq 1): sha256 does not match its content"),
            "{}",
            run.stdout
        );
    }

    // The command line exports from the same database file, with the server still running.
    let out = dir.path().join("cli.zip");
    let run = evalgate(
        &[
            "evidence".as_ref(),
            "export".as_ref(),
            "--repo".as_ref(),
            REPO.as_ref(),
            "--since".as_ref(),
            "2000-01-01".as_ref(),
            "--until".as_ref(),
            "2999-12-31".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Some(&h.db_path()),
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(" runs, ") && run.stdout.contains("head "), "{}", run.stdout);
    let run = verify(&out);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let cli_files = unzip(&std::fs::read(&out).expect("read cli.zip"));
    assert_eq!(text(&cli_files, "runs.csv"), csv, "the same runs as the API's export");
}

#[tokio::test]
async fn without_an_admin_token_the_evidence_api_is_off() {
    let h = Harness::start(Arc::new(Script::new())).await;
    let (status, _, body) = get_evidence(&h, &format!("repo={REPO}&{PERIOD}"), Some("anything")).await;
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("EVALGATE_ADMIN_TOKEN is not configured"));
}

#[test]
fn the_commands_say_what_is_wrong_with_their_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = verify(&dir.path().join("missing.zip"));
    assert_eq!(run.code, 2, "an unreadable file is a setup error");
    assert!(run.stderr.contains("missing.zip"), "{}", run.stderr);

    let garbage = dir.path().join("garbage.zip");
    std::fs::write(&garbage, b"PK not really").expect("write");
    let run = verify(&garbage);
    assert_eq!(run.code, 1, "a file that is not an export fails verification");
    assert!(run.stdout.contains("not a zip file"), "{}", run.stdout);

    let db = dir.path().join("e.db");
    let export = |since: &str, until: &str| {
        let out = dir.path().join("x.zip");
        let args = ["evidence", "export", "--repo", "o/r", "--since", since, "--until", until, "--out"];
        let mut args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        args.push(out.as_os_str());
        (evalgate(&args, Some(&db)), out)
    };
    let (run, _) = export("2026-01-01", "2026-01-31");
    assert_eq!(run.code, 2, "no database file yet");
    assert!(run.stderr.contains("no database file"), "{}", run.stderr);
    let run = evalgate(&["migrate".as_ref()], Some(&db));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (run, _) = export("last week", "2026-01-31");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--since"), "{}", run.stderr);
    let (run, _) = export("2026-02-01", "2026-01-31");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);
    // A database with nothing in it exports an empty period, which verifies.
    let (run, out) = export("2026-01-01", "2026-01-31");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("0 entries"), "{}", run.stdout);
    let run = verify(&out);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with("verified: 0 entries of o/r from 2026-01-01T00:00:00.000Z to 2026-01-31T23:59:59.999Z")
    );
}
