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
        &["pins"],
        &["evidence", "verify", "x.zip"],
        &["evidence", "export", "--repo", "o/r", "--since", "2026-01-01", "--until", "2026-01-31", "--out", "x.zip"],
    ] {
        let run = repo.evalgate(args);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(run.stderr.contains("not available yet"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn migrate_applies_the_migrations_and_is_idempotent() {
    let repo = Repo::empty();
    let db = repo.file("m.db");
    for _ in 0..2 {
        let run = support::command(&repo)
            .arg("migrate")
            .env("EVALGATE_DATABASE_URL", format!("sqlite://{}", db.display()))
            .output()
            .expect("run evalgate");
        assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
        assert!(String::from_utf8_lossy(&run.stdout).contains("migrations applied"));
    }
    assert!(db.is_file());
}

#[test]
fn a_database_url_of_another_kind_is_a_setup_error_naming_the_setting() {
    let repo = Repo::empty();
    let run = support::command(&repo)
        .arg("migrate")
        .env("EVALGATE_DATABASE_URL", "mysql://root:hunter2@localhost/x")
        .output()
        .expect("run evalgate");
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("EVALGATE_DATABASE_URL"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
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
