//! Reading a bundle from its `bundle.yaml` and the files it references.

use super::{Budget, Bundle, EvalSpec, GateConfig, JudgeSpec, ModelParams, ModelSpec, Runner};
use crate::canonical::{BUNDLE_DOMAIN, CanonicalHasher};
use crate::config::RepoConfig;
use crate::decode::{self, Fields};
use crate::diagnostic::{Diagnostics, FileDiags};
use crate::ids::{BundleName, Sha256};
use crate::limits::{MAX_SAMPLES, MAX_TEXT_FILE_BYTES, MAX_TURNS, MAX_YAML_FILE_BYTES};
use crate::repo::{RepoFs, RepoPath};
use crate::snapshot::{PinPolicy, Provider, Snapshot};
use crate::tree::{Kind, Node};
use crate::{lint, parse, tools};
use std::collections::BTreeMap;

pub const MANIFEST_NAME: &str = "bundle.yaml";

const TOP: &[&str] = &["bundle", "version", "model", "prompt", "tools", "runner", "eval", "metadata"];
const MODEL: &[&str] = &["provider", "snapshot", "params"];
const PARAMS: &[&str] = &["temperature", "top_p", "top_k", "max_tokens", "stop", "seed"];
const RUNNER: &[&str] = &["max_turns"];
const EVAL: &[&str] = &["golden_set", "golden_set_sha256", "samples", "judge", "gate", "budget"];
const JUDGE: &[&str] = &["provider", "snapshot", "params", "rubric", "samples"];
const GATE: &[&str] = &[
    "max_regression_rate",
    "min_pass_rate",
    "min_fix_rate",
    "max_cost_increase",
    "max_p95_latency_increase_ms",
    "critical_tags",
];
const BUDGET: &[&str] = &["max_usd", "max_tokens"];

/// A referenced file, read.
struct FileRef {
    path: RepoPath,
    bytes: Vec<u8>,
}

/// Loads the bundle whose manifest is `manifest`, reporting every problem in it and in the
/// files it references (prompt, tools, rubric). The golden set is loaded separately.
pub fn load(fs: &dyn RepoFs, cfg: &RepoConfig, manifest: &RepoPath, diags: &mut Diagnostics) -> Option<Bundle> {
    let before = diags.len();
    let file = manifest.as_str().to_owned();
    let dir = manifest.parent();
    let mut d = FileDiags::new(&file, diags);
    let text = match fs.read_text(manifest, MAX_YAML_FILE_BYTES) {
        Ok(t) => t,
        Err(e) => {
            d.whole(format!("{MANIFEST_NAME} {e}"));
            return None;
        }
    };
    let root = match parse::yaml::parse(&text) {
        Ok(r) => r,
        Err(e) => {
            d.at(e.pos, e.message);
            return None;
        }
    };
    let f = decode::mapping(&mut d, &root, "", TOP)?;

    let name = f.require(&mut d, "bundle", "").and_then(|n| {
        let s = decode::string(&mut d, n, "bundle")?;
        BundleName::parse(&s).map_err(|e| d.at(n.pos, e)).ok()
    });
    let version = f.require(&mut d, "version", "").and_then(|n| decode::nonempty_string(&mut d, n, "version"));
    let model = f
        .require(&mut d, "model", "")
        .and_then(|n| model_spec(&mut d, n, "model", MODEL, &cfg.pin_policy).map(|(m, _)| m));
    let prompt =
        f.require(&mut d, "prompt", "").and_then(|n| read_ref(fs, &mut d, &dir, n, "prompt", MAX_TEXT_FILE_BYTES));
    let has_tools_key = f.get("tools").is_some();
    let tools_ref = f.get("tools").and_then(|n| read_ref(fs, &mut d, &dir, n, "tools", MAX_YAML_FILE_BYTES));
    let runner = f.get("runner").map_or(Some(Runner::default()), |n| runner(&mut d, n));
    let eval = f.require(&mut d, "eval", "").and_then(|n| eval_spec(fs, &mut d, &dir, n, &cfg.pin_policy));
    let metadata = f.get("metadata").map_or(Some(BTreeMap::new()), |n| metadata(&mut d, n));

    // The referenced files: tools are parsed, the prompt is linted against them.
    // No `tools:` means no tools; a tools file that could not be read means unknown tools (and
    // then drift is not checked, rather than reported against an empty list).
    let tool_defs = match (&tools_ref, has_tools_key) {
        (Some(t), _) => parse_tools(diags, t),
        (None, false) => Some(Vec::new()),
        (None, true) => None,
    };
    let prompt_text = prompt.as_ref().and_then(|p| text_of(diags, &file, p));
    if let (Some(p), Some(text)) = (&prompt, &prompt_text) {
        let mut pd = FileDiags::new(p.path.as_str(), diags);
        lint::prompt(&mut pd, text, &cfg.lint);
        if let Some(tools) = &tool_defs {
            lint::drift(&mut pd, text, tools);
        }
    }

    let (eval, rubric_ref) = eval?;
    let mut hasher = CanonicalHasher::new(BUNDLE_DOMAIN, &dir);
    hasher.add_bytes(manifest, text.as_bytes());
    for r in [prompt.as_ref(), tools_ref.as_ref(), rubric_ref.as_ref()].into_iter().flatten() {
        hasher.add_bytes(&r.path, &r.bytes);
    }
    let bundle = Bundle {
        manifest: manifest.clone(),
        dir,
        name: name?,
        version: version?,
        model: model?,
        prompt_path: prompt?.path,
        prompt: prompt_text?,
        tools_path: tools_ref.map(|t| t.path),
        tools: tool_defs?,
        runner: runner?,
        eval,
        metadata: metadata?,
        hash: hasher.finish(),
    };
    (diags.len() == before).then_some(bundle)
}

fn text_of(diags: &mut Diagnostics, manifest: &str, r: &FileRef) -> Option<String> {
    match std::str::from_utf8(&r.bytes) {
        Ok(s) => Some(s.to_owned()),
        Err(_) => {
            diags.push(r.path.as_str(), None, format!("is not UTF-8 text (referenced from {manifest})"));
            None
        }
    }
}

fn parse_tools(diags: &mut Diagnostics, r: &FileRef) -> Option<Vec<tools::ToolDef>> {
    let file = r.path.as_str().to_owned();
    let mut d = FileDiags::new(&file, diags);
    let before = d.count();
    let Ok(text) = std::str::from_utf8(&r.bytes) else {
        d.whole("is not UTF-8 text");
        return None;
    };
    match parse::yaml::parse(text) {
        Ok(root) => {
            let defs = tools::decode(&mut d, &root);
            (d.count() == before).then_some(defs)
        }
        Err(e) => {
            d.at(e.pos, e.message);
            None
        }
    }
}

/// Resolves a path value relative to the bundle folder and reads the file, reporting at the
/// value's position when the path escapes the repository or the file cannot be read.
fn read_ref(fs: &dyn RepoFs, d: &mut FileDiags, dir: &RepoPath, n: &Node, what: &str, limit: u64) -> Option<FileRef> {
    let rel = decode::nonempty_string(d, n, what)?;
    let path = match dir.join(&rel) {
        Ok(p) => p,
        Err(e) => {
            d.at(n.pos, format!("`{what}` path {e}"));
            return None;
        }
    };
    match fs.read(&path, limit) {
        Ok(bytes) => Some(FileRef { path, bytes }),
        Err(e) => {
            d.at(n.pos, format!("`{what}` file `{path}` {e}"));
            None
        }
    }
}

fn provider(d: &mut FileDiags, n: &Node, what: &str) -> Option<Provider> {
    let s = decode::string(d, n, what)?;
    Provider::parse(&s).or_else(|| {
        d.at(n.pos, format!("unknown provider `{s}` in `{what}`; {}", decode::suggestion(&s, &Provider::NAMES)));
        None
    })
}

/// `model:` or `eval.judge:` — provider, pinned snapshot and params. Returns the fields too, so
/// the judge can read its own extra keys.
fn model_spec<'n>(
    d: &mut FileDiags,
    n: &'n Node,
    what: &str,
    known: &[&str],
    policy: &PinPolicy,
) -> Option<(ModelSpec, Fields<'n>)> {
    let f = decode::mapping(d, n, what, known)?;
    let provider = f.require(d, "provider", what).and_then(|p| provider(d, p, &decode::join(what, "provider")));
    let snapshot_node = f.require(d, "snapshot", what);
    let id = snapshot_node.and_then(|s| decode::nonempty_string(d, s, &decode::join(what, "snapshot")));
    let snapshot: Option<Snapshot> = match (provider, id, snapshot_node) {
        (Some(p), Some(id), Some(sn)) => policy.snapshot(p, &id).map_err(|e| d.at(sn.pos, e)).ok(),
        _ => None,
    };
    let params = f.get("params").map_or(Some(ModelParams::default()), |p| params(d, p, &decode::join(what, "params")));
    Some((ModelSpec { snapshot: snapshot?, params: params? }, f))
}

fn params(d: &mut FileDiags, n: &Node, what: &str) -> Option<ModelParams> {
    let before = d.count();
    let f = decode::mapping(d, n, what, PARAMS)?;
    let w = |k: &str| decode::join(what, k);
    let p = ModelParams {
        temperature: f.get("temperature").and_then(|v| decode::number_in(d, v, &w("temperature"), 0.0, 2.0)),
        top_p: f.get("top_p").and_then(|v| decode::number_in(d, v, &w("top_p"), 0.0, 1.0)),
        top_k: f.get("top_k").and_then(|v| decode::int_in(d, v, &w("top_k"), 1, 1_000_000)).map(|v| v as u32),
        max_tokens: f
            .get("max_tokens")
            .and_then(|v| decode::int_in(d, v, &w("max_tokens"), 1, 1_000_000))
            .map(|v| v as u32),
        stop: f.get("stop").and_then(|v| decode::string_list(d, v, &w("stop"))).unwrap_or_default(),
        seed: f.get("seed").and_then(|v| decode::int_in(d, v, &w("seed"), i64::MIN, i64::MAX)),
    };
    (d.count() == before).then_some(p)
}

fn runner(d: &mut FileDiags, n: &Node) -> Option<Runner> {
    let f = decode::mapping(d, n, "runner", RUNNER)?;
    let max_turns = match f.get("max_turns") {
        Some(v) => decode::int_in(d, v, "runner.max_turns", 1, i64::from(MAX_TURNS))? as u32,
        None => Runner::default().max_turns,
    };
    Some(Runner { max_turns })
}

fn samples(d: &mut FileDiags, f: &Fields<'_>, what: &str) -> Option<u32> {
    match f.get("samples") {
        Some(v) => decode::int_in(d, v, &decode::join(what, "samples"), 1, i64::from(MAX_SAMPLES)).map(|s| s as u32),
        None => Some(1),
    }
}

fn eval_spec(
    fs: &dyn RepoFs,
    d: &mut FileDiags,
    dir: &RepoPath,
    n: &Node,
    policy: &PinPolicy,
) -> Option<(EvalSpec, Option<FileRef>)> {
    let before = d.count();
    let f = decode::mapping(d, n, "eval", EVAL)?;
    let golden_set = f.require(d, "golden_set", "eval").and_then(|g| {
        let rel = decode::nonempty_string(d, g, "eval.golden_set")?;
        dir.join(&rel).map_err(|e| d.at(g.pos, format!("`eval.golden_set` path {e}"))).ok()
    });
    let pin = match f.get("golden_set_sha256") {
        None => {
            d.at(
                f.pos,
                format!("missing required key `eval.golden_set_sha256`; run `evalgate golden pin {dir}` to write it"),
            );
            None
        }
        Some(p) => {
            let s = match &p.kind {
                Kind::Str(s) => Some(s.clone()),
                _ => None,
            };
            match s.as_deref().map(Sha256::parse) {
                Some(Ok(sha)) => Some((sha, p.pos)),
                Some(Err(e)) => {
                    d.at(p.pos, format!("`eval.golden_set_sha256`: {e}; run `evalgate golden pin {dir}` to write it"));
                    None
                }
                None => {
                    d.at(
                        p.pos,
                        format!(
                            "`eval.golden_set_sha256` must be a string, found {}; run `evalgate golden pin {dir}`",
                            p.kind_name()
                        ),
                    );
                    None
                }
            }
        }
    };
    let samples = samples(d, &f, "eval");
    let judge = match f.get("judge") {
        None => Some((None, None)),
        Some(j) => judge(fs, d, dir, j, policy).map(|(s, r)| (Some(s), r)),
    };
    let gate = f.get("gate").map_or(Some(GateConfig::default()), |g| gate(d, g));
    let budget = f.get("budget").map_or(Some(Budget::default()), |b| budget(d, b));
    let (judge, rubric_ref) = judge?;
    let (golden_set_sha256, pin_pos) = pin?;
    let spec = EvalSpec {
        golden_set: golden_set?,
        golden_set_sha256,
        pin_pos,
        samples: samples?,
        judge,
        gate: gate?,
        budget: budget?,
    };
    (d.count() == before).then_some((spec, rubric_ref))
}

fn judge(
    fs: &dyn RepoFs,
    d: &mut FileDiags,
    dir: &RepoPath,
    n: &Node,
    policy: &PinPolicy,
) -> Option<(JudgeSpec, Option<FileRef>)> {
    let (model, f) = model_spec(d, n, "eval.judge", JUDGE, policy)?;
    let rubric_ref = f.get("rubric").map(|r| read_ref(fs, d, dir, r, "eval.judge.rubric", MAX_TEXT_FILE_BYTES));
    let rubric = match &rubric_ref {
        Some(Some(r)) => match String::from_utf8(r.bytes.clone()) {
            Ok(s) => Some(Some(s)),
            Err(_) => {
                d.whole(format!("judge rubric `{}` is not UTF-8 text", r.path));
                None
            }
        },
        Some(None) => None,
        None => Some(None),
    };
    let samples = samples(d, &f, "eval.judge")?;
    let rubric_ref = rubric_ref.flatten();
    let spec = JudgeSpec {
        snapshot: model.snapshot,
        params: model.params,
        rubric_path: rubric_ref.as_ref().map(|r| r.path.clone()),
        rubric: rubric?,
        samples,
    };
    Some((spec, rubric_ref))
}

fn gate(d: &mut FileDiags, n: &Node) -> Option<GateConfig> {
    let before = d.count();
    let f = decode::mapping(d, n, "eval.gate", GATE)?;
    let rate = |d: &mut FileDiags, k: &str| {
        f.get(k).and_then(|v| decode::number_in(d, v, &format!("eval.gate.{k}"), 0.0, 1.0))
    };
    let g = GateConfig {
        max_regression_rate: rate(d, "max_regression_rate"),
        min_pass_rate: rate(d, "min_pass_rate"),
        min_fix_rate: rate(d, "min_fix_rate"),
        max_cost_increase: f
            .get("max_cost_increase")
            .and_then(|v| decode::non_negative(d, v, "eval.gate.max_cost_increase")),
        max_p95_latency_increase_ms: f
            .get("max_p95_latency_increase_ms")
            .and_then(|v| decode::int_in(d, v, "eval.gate.max_p95_latency_increase_ms", 0, i64::MAX))
            .map(|v| v as u64),
        critical_tags: match f.get("critical_tags") {
            Some(v) => decode::string_list(d, v, "eval.gate.critical_tags").unwrap_or_default(),
            None => GateConfig::default().critical_tags,
        },
    };
    (d.count() == before).then_some(g)
}

fn budget(d: &mut FileDiags, n: &Node) -> Option<Budget> {
    let before = d.count();
    let f = decode::mapping(d, n, "eval.budget", BUDGET)?;
    let b = Budget {
        max_usd: f.get("max_usd").and_then(|v| decode::non_negative(d, v, "eval.budget.max_usd")),
        max_tokens: f
            .get("max_tokens")
            .and_then(|v| decode::int_in(d, v, "eval.budget.max_tokens", 0, i64::MAX))
            .map(|v| v as u64),
    };
    (d.count() == before).then_some(b)
}

fn metadata(d: &mut FileDiags, n: &Node) -> Option<BTreeMap<String, String>> {
    let before = d.count();
    let mut out = BTreeMap::new();
    for (k, v) in decode::free_mapping(d, n, "metadata")? {
        let s = match &v.kind {
            Kind::Str(s) => s.clone(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(x) => x.to_string(),
            Kind::Bool(b) => b.to_string(),
            _ => {
                d.at(v.pos, format!("`metadata.{}` must be a single value, found {}", k.name, v.kind_name()));
                continue;
            }
        };
        out.insert(k.name.clone(), s);
    }
    (d.count() == before).then_some(out)
}
