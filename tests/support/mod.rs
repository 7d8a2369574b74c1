//! A throwaway customer repository on disk, and the real `evalgate` binary run against it.
//!
//! `Repo::valid()` is a small, valid repository (one bundle, its tools, prompt, rubric and a
//! pinned golden set); tests break one thing in it and read what `evalgate` says.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

pub const EVALGATE_YML: &str = "\
lint:
  prompt_max_chars: 2000
  required_sections: [\"## Policy\"]
  forbidden_phrases: [\"as an AI language model\"]
";

pub const BUNDLE_YAML: &str = "\
bundle: demo
version: \"1.0\"
model:
  provider: anthropic
  snapshot: claude-sonnet-4-5-20250929
  params: { temperature: 0, max_tokens: 512 }
prompt: prompt.md
tools: tools.yaml
runner: { max_turns: 4 }
eval:
  golden_set: ../golden
  golden_set_sha256: \"PIN\"
  samples: 1
  judge:
    provider: anthropic
    snapshot: claude-haiku-4-5-20251001
    rubric: rubric.md
    samples: 3
  gate:
    max_regression_rate: 0.0
    critical_tags: [critical]
  budget: { max_usd: 1.0 }
metadata: { author: alex }
";

pub const PROMPT_MD: &str = "\
# Demo agent
## Policy
Look up the order with lookup_order(order_id) before you call refund_order(order_id, amount).
";

pub const TOOLS_YAML: &str = "\
- name: lookup_order
  description: Look up an order
  input_schema:
    type: object
    properties: { order_id: { type: string } }
    required: [order_id]
- name: refund_order
  description: Refund an order
  input_schema:
    type: object
    properties: { order_id: { type: string }, amount: { type: number, minimum: 0 } }
    required: [order_id, amount]
";

pub const RUBRIC_MD: &str = "Polite and correct.\n";

pub const GOLDEN_YAML: &str = "name: demo\nversion: 1\n";

pub const CASES_JSONL: &str = concat!(
    r#"{"id": "c1", "input": {"messages": [{"role": "user", "content": "Refund A1"}]}, "tool_results": {"lookup_order": {"total": 5}}, "checks": [{"type": "tool_called", "tool": "refund_order", "args": {"order_id": "A1"}}, {"type": "judge"}], "tags": ["critical"]}"#,
    "\n",
    r#"{"id": "c2", "input": {"messages": [{"role": "user", "content": "Hi"}]}, "checks": [{"type": "contains", "value": "hello"}], "label": "pass"}"#,
    "\n"
);

pub struct Repo {
    dir: TempDir,
}

/// What one run of `evalgate` printed and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The `path:line:col: error: message` lines.
    pub fn errors(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| l.contains(": error: ")).collect()
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// The `evalgate` binary, to run in `repo` with extra settings.
pub fn command(repo: &Repo) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_evalgate"));
    c.current_dir(repo.path()).env_remove("EVALGATE_DATABASE_URL");
    c
}

impl Repo {
    /// An empty repository (a folder with `.git`, so it is its own root).
    pub fn empty() -> Repo {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join(".git")).expect("mkdir .git");
        Repo { dir }
    }

    /// The valid demo repository, with its golden set pinned by `evalgate golden pin`.
    pub fn valid() -> Repo {
        let repo = Repo::unpinned();
        repo.pin();
        repo
    }

    /// The demo repository with the placeholder pin `"PIN"` still in `agent/bundle.yaml`.
    pub fn unpinned() -> Repo {
        let repo = Repo::empty();
        repo.write(".evalgate.yml", EVALGATE_YML);
        repo.write("agent/bundle.yaml", BUNDLE_YAML);
        repo.write("agent/prompt.md", PROMPT_MD);
        repo.write("agent/tools.yaml", TOOLS_YAML);
        repo.write("agent/rubric.md", RUBRIC_MD);
        repo.write("golden/golden.yaml", GOLDEN_YAML);
        repo.write("golden/cases.jsonl", CASES_JSONL);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let path = self.file(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, content).expect("write fixture file");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).expect("read fixture file")
    }

    /// Replaces the first `from` in `rel` by `to`; `from` must be there.
    pub fn patch(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "fixture {rel} has no `{from}`");
        self.write(rel, text.replacen(from, to, 1));
    }

    pub fn evalgate(&self, args: &[&str]) -> Run {
        Command::new(env!("CARGO_BIN_EXE_evalgate"))
            .args(args)
            .current_dir(self.path())
            .env_remove("EVALGATE_DATABASE_URL")
            .output()
            .expect("run evalgate")
            .into()
    }

    pub fn check(&self) -> Run {
        self.evalgate(&["check", "."])
    }

    pub fn pin(&self) {
        let run = self.evalgate(&["golden", "pin", "agent"]);
        assert_eq!(run.code, 0, "golden pin failed: {}{}", run.stdout, run.stderr);
    }
}

pub mod fake_provider;
pub mod scenario;
