//! The command line of SPEC: every subcommand exists and runs.

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
fn pins_is_built_and_asks_for_the_key_it_needs() {
    let repo = Repo::valid();
    let run: support::Run =
        support::command(&repo).arg("pins").env_remove("ANTHROPIC_API_KEY").output().expect("run evalgate").into();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("ANTHROPIC_API_KEY"), "{}", run.stderr);
    assert!(!run.stderr.contains("not available yet"), "{}", run.stderr);
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

/// `serve` with the settings given, none of the caller's own.
fn serve_with(env: &[(&str, &str)]) -> support::Run {
    let repo = Repo::empty();
    let mut cmd = support::command(&repo);
    cmd.arg("serve");
    for var in ["EVALGATE_APP_ID", "EVALGATE_PRIVATE_KEY", "EVALGATE_PRIVATE_KEY_PATH", "EVALGATE_WEBHOOK_SECRET"] {
        cmd.env_remove(var);
    }
    cmd.env("EVALGATE_DATABASE_URL", format!("sqlite://{}", repo.file("s.db").display()));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run evalgate").into()
}

#[test]
fn serve_without_a_required_setting_stops_with_one_line_naming_it() {
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/keys/test-app-private.pem");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "EVALGATE_APP_ID"),
        (&[("EVALGATE_APP_ID", "12")], "EVALGATE_PRIVATE_KEY_PATH"),
        (&[("EVALGATE_APP_ID", "12"), ("EVALGATE_PRIVATE_KEY_PATH", key)], "EVALGATE_WEBHOOK_SECRET"),
        (&[("EVALGATE_APP_ID", "twelve")], "EVALGATE_APP_ID"),
    ];
    for (env, named) in cases {
        let run = serve_with(env);
        assert_eq!(run.code, 2, "{env:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{env:?}: one line: {}", run.stderr);
        assert!(run.stderr.contains(named), "{env:?} should name {named}: {}", run.stderr);
    }
}

#[test]
fn serve_with_a_key_that_is_not_a_key_says_so_without_printing_it() {
    let run = serve_with(&[
        ("EVALGATE_APP_ID", "12"),
        ("EVALGATE_PRIVATE_KEY", "not-a-pem-but-secret-material"),
        ("EVALGATE_WEBHOOK_SECRET", "hook-secret-value"),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("private key"), "{}", run.stderr);
    assert!(!run.stderr.contains("secret-material") && !run.stderr.contains("hook-secret-value"), "{}", run.stderr);
}

#[test]
fn evalgate_toml_sets_what_the_environment_does_not() {
    let repo = Repo::empty();
    repo.write("evalgate.toml", "EVALGATE_DATABASE_URL = \"sqlite://from-file.db\"\n");
    let run = support::command(&repo).arg("migrate").output().expect("run evalgate");
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(repo.file("from-file.db").is_file(), "the file's database was used");
    // The environment wins over the file.
    let run = support::command(&repo)
        .arg("migrate")
        .env("EVALGATE_DATABASE_URL", "sqlite://from-env.db")
        .output()
        .expect("run evalgate");
    assert_eq!(run.status.code(), Some(0));
    assert!(repo.file("from-env.db").is_file());
}

#[test]
fn a_bad_evalgate_toml_stops_with_its_place() {
    let repo = Repo::empty();
    repo.write("evalgate.toml", "EVALGATE_DATABSE_URL = \"sqlite://x.db\"\n");
    let run: support::Run = support::command(&repo).arg("migrate").output().expect("run evalgate").into();
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("evalgate.toml") && run.stderr.contains("EVALGATE_DATABASE_URL"), "{}", run.stderr);
}
