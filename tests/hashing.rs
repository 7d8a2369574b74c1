//! The bundle hash and the golden-set pin: the documented canonical form, the same for the
//! same bytes wherever they sit, different for any change to any referenced byte.

mod support;

use evaluators::config::RepoConfig;
use evaluators::diagnostic::Diagnostics;
use evaluators::ids::Sha256;
use evaluators::repo::{RepoPath, WorkTree};
use evaluators::workspace::{LoadedBundle, load_bundle};
use support::Repo;

fn load_at(repo: &Repo, manifest: &str) -> LoadedBundle {
    let fs = WorkTree::new(repo.path()).unwrap();
    let mut diags = Diagnostics::new();
    let loaded = load_bundle(&fs, &RepoConfig::default(), &RepoPath::parse(manifest).unwrap(), &mut diags);
    loaded.unwrap_or_else(|| panic!("{:?}", diags.into_sorted()))
}

fn load(repo: &Repo) -> LoadedBundle {
    load_at(repo, "agent/bundle.yaml")
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).hex()
}

#[test]
fn the_bundle_hash_is_the_documented_manifest_of_its_files() {
    let repo = Repo::valid();
    let manifest = format!(
        "evalgate-bundle-v1\n{}  bundle.yaml\n{}  prompt.md\n{}  rubric.md\n{}  tools.yaml\n",
        sha(repo.read("agent/bundle.yaml").as_bytes()),
        sha(support::PROMPT_MD.as_bytes()),
        sha(support::RUBRIC_MD.as_bytes()),
        sha(support::TOOLS_YAML.as_bytes()),
    );
    assert_eq!(load(&repo).bundle.hash.hex(), sha(manifest.as_bytes()));
}

#[test]
fn the_golden_set_pin_is_the_documented_manifest_of_its_files() {
    let repo = Repo::valid();
    let manifest = format!(
        "evalgate-golden-set-v1\n{}  cases.jsonl\n{}  golden.yaml\n",
        sha(support::CASES_JSONL.as_bytes()),
        sha(support::GOLDEN_YAML.as_bytes()),
    );
    assert_eq!(load(&repo).golden.pin.hex(), sha(manifest.as_bytes()));
}

#[test]
fn the_same_bytes_hash_the_same_wherever_the_repository_sits() {
    let a = Repo::valid();
    let b = Repo::empty();
    for f in [
        "agent/bundle.yaml",
        "agent/prompt.md",
        "agent/tools.yaml",
        "agent/rubric.md",
        "golden/golden.yaml",
        "golden/cases.jsonl",
    ] {
        b.write(&format!("deeper/nested/{f}"), a.read(f));
    }
    let la = load(&a);
    let lb = load_at(&b, "deeper/nested/agent/bundle.yaml");
    assert_eq!(la.bundle.hash, lb.bundle.hash);
    assert_eq!(la.golden.pin, lb.golden.pin);
}

#[test]
fn a_file_the_bundle_does_not_reference_does_not_change_its_hash() {
    let repo = Repo::valid();
    let before = load(&repo).bundle.hash;
    repo.write("agent/README.md", "notes\n");
    assert_eq!(load(&repo).bundle.hash, before);
}

#[test]
fn any_change_to_any_referenced_byte_changes_the_bundle_hash() {
    for file in ["agent/bundle.yaml", "agent/prompt.md", "agent/tools.yaml", "agent/rubric.md"] {
        let repo = Repo::valid();
        let before = load(&repo).bundle.hash;
        let text = repo.read(file);
        repo.write(file, format!("{text}# one more line\n"));
        assert_ne!(load(&repo).bundle.hash, before, "{file}");
    }
}

#[test]
fn line_endings_are_bytes_too() {
    let repo = Repo::valid();
    let before = load(&repo).bundle.hash;
    repo.write("agent/prompt.md", support::PROMPT_MD.replace('\n', "\r\n"));
    assert_ne!(load(&repo).bundle.hash, before);
}

#[test]
fn any_change_to_the_golden_set_changes_its_pin() {
    for (file, from, to) in
        [("golden/cases.jsonl", "\"Hi\"", "\"Hi!\""), ("golden/golden.yaml", "version: 1", "version: 2")]
    {
        let repo = Repo::valid();
        let before = load(&repo).golden.pin;
        repo.patch(file, from, to);
        repo.pin();
        assert_ne!(load(&repo).golden.pin, before, "{file}");
    }
}

#[test]
fn the_pin_is_part_of_the_bundle_hash() {
    let repo = Repo::valid();
    let before = load(&repo).bundle.hash;
    repo.patch("golden/cases.jsonl", "\"Hi\"", "\"Hi!\"");
    repo.pin();
    assert_ne!(load(&repo).bundle.hash, before);
}
