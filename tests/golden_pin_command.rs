//! `evalgate golden pin BUNDLE_DIR`: writes the pin whatever the field held, and nothing else.

mod support;

use support::Repo;

const B: &str = "agent/bundle.yaml";

/// Every line but the pin's is byte-for-byte what it was.
fn assert_only_pin_line_changed(before: &str, after: &str) {
    let b: Vec<&str> = before.split_inclusive('\n').collect();
    let a: Vec<&str> = after.split_inclusive('\n').filter(|l| !l.contains("golden_set_sha256")).collect();
    let b: Vec<&str> = b.into_iter().filter(|l| !l.contains("golden_set_sha256")).collect();
    assert_eq!(a, b);
}

#[test]
fn a_placeholder_pin_is_replaced_and_check_then_passes() {
    let repo = Repo::unpinned();
    assert_eq!(repo.check().code, 1);
    let before = repo.read(B);
    let run = repo.evalgate(&["golden", "pin", "agent"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("pinned golden set golden at sha256:"), "{}", run.stdout);
    assert_only_pin_line_changed(&before, &repo.read(B));
    let check = repo.check();
    assert_eq!(check.code, 0, "{}", check.stdout);
}

#[test]
fn a_missing_pin_is_added_under_golden_set() {
    let repo = Repo::unpinned();
    repo.patch(B, "  golden_set_sha256: \"PIN\"\n", "");
    let before = repo.read(B);
    assert_eq!(repo.evalgate(&["golden", "pin", "agent"]).code, 0);
    let after = repo.read(B);
    assert!(after.contains("  golden_set: ../golden\n  golden_set_sha256: \""), "{after}");
    assert_only_pin_line_changed(&before, &after);
    assert_eq!(repo.check().code, 0);
}

#[test]
fn a_stale_pin_is_replaced_after_the_golden_set_changes() {
    let repo = Repo::valid();
    repo.patch("golden/cases.jsonl", "\"Hi\"", "\"Hello\"");
    assert_eq!(repo.check().code, 1);
    let before = repo.read(B);
    assert_eq!(repo.evalgate(&["golden", "pin", "agent"]).code, 0);
    assert_ne!(before, repo.read(B));
    assert_only_pin_line_changed(&before, &repo.read(B));
    assert_eq!(repo.check().code, 0);
}

#[test]
fn pinning_twice_changes_nothing_the_second_time() {
    let repo = Repo::valid();
    let before = repo.read(B);
    let run = repo.evalgate(&["golden", "pin", "agent"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("already pinned"), "{}", run.stdout);
    assert_eq!(before, repo.read(B));
}

#[test]
fn comments_quotes_and_crlf_line_endings_survive() {
    let repo = Repo::unpinned();
    let crlf = repo.read(B).replace('\n', "\r\n").replace("bundle: demo", "bundle: demo   # the name");
    repo.write(B, &crlf);
    assert_eq!(repo.evalgate(&["golden", "pin", "agent"]).code, 0);
    let after = repo.read(B);
    assert!(after.contains("bundle: demo   # the name\r\n"));
    assert_eq!(after.matches("\r\n").count(), crlf.matches("\r\n").count());
    assert_only_pin_line_changed(&crlf, &after);
}

#[test]
fn without_eval_golden_set_it_says_so_and_exits_2() {
    let repo = Repo::unpinned();
    repo.patch(B, "  golden_set: ../golden\n", "");
    let before = repo.read(B);
    let run = repo.evalgate(&["golden", "pin", "agent"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("`eval.golden_set` is missing"), "{}", run.stderr);
    assert_eq!(before, repo.read(B));
}

#[test]
fn a_missing_golden_set_folder_is_a_setup_error() {
    let repo = Repo::unpinned();
    repo.patch(B, "golden_set: ../golden", "golden_set: ../nowhere");
    let run = repo.evalgate(&["golden", "pin", "agent"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nowhere/golden.yaml not found"), "{}", run.stderr);
}
