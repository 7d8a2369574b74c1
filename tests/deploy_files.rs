//! The deployment files say what the App needs, and agree with what `evalgate serve` offers.
//! No container runtime or cluster runs here, so these read the files; the probes and the
//! user they name are checked against the server's routes and the Dockerfile.

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_image_is_multi_stage_and_runs_as_a_non_root_user() {
    let d = read("Dockerfile");
    assert!(d.matches("\nFROM ").count() + usize::from(d.starts_with("FROM ")) >= 2, "two stages");
    assert!(d.contains("USER 10001"), "a numeric non-root user");
    assert!(d.contains("cargo build --release --locked -p evalgate"));
    assert!(d.contains("CMD [\"serve\"]"));
}

#[test]
fn the_kubernetes_example_probes_health_and_readiness_on_several_replicas() {
    let k = read("deploy/kubernetes.yaml");
    let replicas: u32 = k
        .lines()
        .find_map(|l| l.trim().strip_prefix("replicas:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a replica count");
    assert!(replicas >= 2, "several replicas");
    assert!(k.contains("path: /healthz") && k.contains("path: /readyz"));
    assert!(k.contains("kind: Secret") && k.contains("kind: Service") && k.contains("args: [\"migrate\"]"));
    assert!(k.contains("runAsNonRoot: true"));
    assert!(k.contains("postgres://"), "replicas share PostgreSQL");
}

#[test]
fn the_app_manifest_asks_for_the_permissions_and_events_used() {
    let m = read("app.yml");
    for p in [
        "checks: write",
        "pull_requests: write",
        "issues: write",
        "metadata: read",
        "contents: write",
        "merge_queues: read",
    ] {
        assert!(m.contains(p), "{p}");
    }
    // `installation` events reach every App; GitHub refuses a manifest that lists them.
    for e in ["- pull_request", "- issue_comment", "- check_suite", "- check_run", "- merge_group"] {
        assert!(m.contains(e), "{e}");
    }
    assert!(!m.contains("- installation"), "GitHub refuses installation events in a manifest");
    assert!(m.contains("/webhooks/github"));
}
