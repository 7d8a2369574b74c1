//! The command line of SPEC: every subcommand exists; those not built yet say so and exit 2.

mod support;

use support::Repo;

#[test]
fn help_lists_every_subcommand_of_the_spec() {
    let run = Repo::empty().evalgate(&["--help"]);
    assert_eq!(run.code, 0);
    for cmd in ["serve", "check", "eval", "golden", "pins", "evidence", "migrate"] {
        assert!(run.stdout.contains(cmd), "--help lacks {cmd}:\n{}", run.stdout);
    }
}

#[test]
fn subcommands_not_built_yet_say_so_and_exit_2() {
    let repo = Repo::valid();
    for args in [
        &["serve"][..],
        &["eval", "agent"],
        &["pins"],
        &["evidence", "verify", "x.zip"],
        &["evidence", "export", "--repo", "o/r", "--since", "2026-01-01", "--until", "2026-01-31", "--out", "x.zip"],
        &["migrate"],
    ] {
        let run = repo.evalgate(args);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(run.stderr.contains("not available yet"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn a_usage_error_exits_2() {
    let repo = Repo::empty();
    assert_eq!(repo.evalgate(&["bogus"]).code, 2);
    assert_eq!(repo.evalgate(&["eval"]).code, 2);
    assert_eq!(repo.evalgate(&["eval", "x", "--record", "a", "--replay", "b"]).code, 2);
}

#[test]
fn check_of_a_missing_path_is_a_setup_error() {
    let run = Repo::empty().evalgate(&["check", "no/such/dir"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no/such/dir"), "{}", run.stderr);
}
