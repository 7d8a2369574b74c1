//! `evalgate eval BUNDLE_DIR`: the gate of a pull request, locally. Head is the working tree,
//! base is a git revision (default: the merge-base with the default branch). The gate's
//! configuration and the golden-set pin come from the base, as on a pull request.

use crate::cli::EvalArgs;
use crate::exit::Outcome;
use crate::git::{self, GitTree};
use crate::output;
use crate::settings;
use crate::store::Store;
use anyhow::{Context as _, bail};
use evaluators::bundle::Bundle;
use evaluators::config;
use evaluators::diagnostic::Diagnostics;
use evaluators::engine::estimate;
use evaluators::gate::{self, Source, Thresholds};
use evaluators::pricing::PriceTable;
use evaluators::provider::cassette::Cassette;
use evaluators::provider::{ModelClient, RetryPolicy};
use evaluators::repo::{self, RepoFs, RepoPath, WorkTree};
use evaluators::report::Report;
use evaluators::snapshot::Provider;
use evaluators::workspace::{self, LoadedBundle};
use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;

pub fn run(args: &EvalArgs) -> anyhow::Result<Outcome> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(eval(args))
}

async fn eval(args: &EvalArgs) -> anyhow::Result<Outcome> {
    let (tree, manifest) = locate(&args.bundle_dir)?;
    let head = load(&tree, &manifest, "the working tree")?;
    // The base's `.evalgate.yml` prices the run (a change cannot make its own cost gate cheap).
    let mut base_prices = None;
    let base = match (&args.base_dir, &args.base_ref) {
        (Some(dir), _) => {
            let (base_tree, base_manifest) = locate(dir)?;
            if base_tree.root() != tree.root() {
                bail!("--base-dir {} is in another repository than {}", dir.display(), args.bundle_dir.display());
            }
            Some(load(&tree, &base_manifest, &format!("--base-dir {}", dir.display()))?)
        }
        (None, rev) => {
            let rev = match rev {
                Some(r) => r.clone(),
                None => git::default_base(tree.root())?,
            };
            let git_tree = GitTree::at(tree.root(), &rev)?;
            base_prices = Some(config_of(&git_tree)?.prices);
            // Paired by manifest path; a manifest moved since the base pairs with its old path.
            let base_manifest = if git_tree.entry_exists(&manifest)? {
                Some(manifest.clone())
            } else {
                git::renamed_from(tree.root(), &rev, &manifest)?
            };
            match base_manifest {
                Some(m) => Some(load(&git_tree, &m, &format!("base revision {rev}"))?),
                None => {
                    eprintln!(
                        "note: {manifest} does not exist at the base revision {rev}: a new bundle, evaluated on head alone against its own golden set and gate"
                    );
                    None
                }
            }
        }
    };
    let pair = crate::evaluate::Pair { base: base.as_ref(), head: &head };
    let instrument = pair.instrument();
    let thresholds = thresholds(&instrument.bundle, &args.threshold)?;
    for note in instrument_notes(pair) {
        eprintln!("note: {note}");
    }
    let golden = &instrument.golden;
    let prices = match base_prices {
        Some(p) => PriceTable::new(p),
        None => PriceTable::new(config_of(&tree)?.prices),
    };
    crate::evaluate::require_prices(&prices, pair).map_err(anyhow::Error::msg)?;

    let store = Store::open(&settings::database_url()).await?;
    let cache: Arc<dyn evaluators::engine::cache::ResultCache> = Arc::new(store);
    let limits = settings::limits(args.concurrency)?;

    if args.estimate {
        // What the run would find cached depends on where its answers would come from.
        let client = match &args.replay {
            Some(path) => ModelClient::replay(Cassette::load(path)?, limits),
            None => ModelClient::live(settings::endpoints(), RetryPolicy::default(), limits, None)?,
        };
        // What the run would run: the head's agent measured by the instrument.
        let measured = evaluators::instrument::measured(&head.bundle, &instrument.bundle);
        let base_bundle = base.as_ref().map_or(&measured, |b| &b.bundle);
        let e = estimate::estimate(cache.as_ref(), &client, &prices, base_bundle, &measured, golden).await?;
        output::print_estimate(&e, base_bundle, &measured, golden);
        return Ok(Outcome::Ok);
    }

    if args.replay.is_none() {
        require_keys(pair)?;
    }
    let client = match &args.replay {
        Some(path) => ModelClient::replay(Cassette::load(path)?, limits),
        None => ModelClient::live(settings::endpoints(), RetryPolicy::default(), limits, args.record.clone())?,
    };
    let total = crate::evaluate::total_runs(pair);
    let bar = progress_bar(total, &head.bundle);
    let setup = crate::evaluate::Setup { client: Arc::new(client), cache, prices, concurrency: limits.concurrency };
    let (report, engine) = {
        let bar = bar.clone();
        crate::evaluate::evaluate(setup, pair, &thresholds, move || bar.inc(1)).await
    };
    bar.finish_and_clear();
    if args.record.is_some() {
        engine.caller().client().finish().context("writing the cassette")?;
    }
    write_outputs(args, &report)?;
    print!("{}", output::summary_text(&report));
    Ok(outcome(&report))
}

/// What the head changes in the instrument, said before the run: none of it applies here.
fn instrument_notes(pair: crate::evaluate::Pair<'_>) -> Vec<String> {
    let Some(base) = pair.base else { return Vec::new() };
    let changes = evaluators::instrument::changes(Some(base), Some(pair.head));
    if changes.is_empty() {
        return Vec::new();
    }
    let mut out = vec![format!(
        "the head changes the instrument in {} place(s); both sides are measured by the base's (golden set, gate, samples, budget, judge), as on a pull request",
        changes.len()
    )];
    if pair.judge_changed() {
        out.push("the head changes the judge: it grades the head's transcripts beside the base's judge, and the gate fails if it agrees less with the human labels".into());
    }
    out
}

fn outcome(r: &Report) -> Outcome {
    if r.incomplete.is_some() {
        Outcome::Incomplete
    } else if r.gate.passed {
        Outcome::Ok
    } else {
        Outcome::Failed
    }
}

fn write_outputs(args: &EvalArgs, r: &Report) -> anyhow::Result<()> {
    if let Some(p) = &args.json {
        output::write_file(p, &output::json(r)?)?;
    }
    if let Some(p) = &args.markdown {
        output::write_file(p, &output::markdown(r)?)?;
    }
    if let Some(p) = &args.junit {
        output::write_file(p, &output::junit(r)?)?;
    }
    Ok(())
}

/// The repository and the manifest path of the bundle folder `dir`.
fn locate(dir: &Path) -> anyhow::Result<(WorkTree, RepoPath)> {
    let root = repo::find_root(dir).with_context(|| format!("{} is not inside a repository", dir.display()))?;
    let tree = WorkTree::new(&root).with_context(|| format!("cannot open {}", root.display()))?;
    let abs = dir.canonicalize().with_context(|| format!("{} does not exist", dir.display()))?;
    let rel = tree.repo_path(&abs).with_context(|| format!("{} is outside {}", dir.display(), root.display()))?;
    let manifest = rel.join(evaluators::bundle::MANIFEST_NAME).map_err(anyhow::Error::msg)?;
    if !tree.disk_path(&manifest).is_file() {
        bail!("{} has no {}", dir.display(), evaluators::bundle::MANIFEST_NAME);
    }
    Ok((tree, manifest))
}

fn config_of(fs: &dyn RepoFs) -> anyhow::Result<config::RepoConfig> {
    let mut diags = Diagnostics::new();
    let cfg = config::load(fs, &mut diags);
    if !diags.is_empty() {
        bail!("{}\n.evalgate.yml has errors; run `evalgate check` for the full list", diags_text(&diags));
    }
    Ok(cfg)
}

/// Loads a valid bundle with its pinned golden set, or says every problem and stops.
fn load(fs: &dyn RepoFs, manifest: &RepoPath, what: &str) -> anyhow::Result<LoadedBundle> {
    let cfg = config_of(fs)?;
    let mut diags = Diagnostics::new();
    match workspace::load_bundle(fs, &cfg, manifest, &mut diags) {
        Some(b) if diags.is_empty() => Ok(b),
        _ => bail!(
            "{}\nthe bundle in {what} is not valid ({} problem(s)); fix them first",
            diags_text(&diags),
            diags.len()
        ),
    }
}

fn diags_text(d: &Diagnostics) -> String {
    d.clone().into_sorted().iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n")
}

fn thresholds(base: &Bundle, flags: &[String]) -> anyhow::Result<Thresholds> {
    let mut t = Thresholds::from_base(&base.eval.gate);
    for f in flags {
        let (k, v) = f.split_once('=').with_context(|| format!("--threshold takes KEY=VALUE, found `{f}`"))?;
        let key = gate::Key::parse(k.trim()).with_context(|| {
            format!(
                "--threshold: unknown key `{}`; the keys are {}",
                k.trim(),
                gate::Key::ALL.map(|k| k.as_str()).join(", ")
            )
        })?;
        let value = key.parse_value(v).map_err(|e| anyhow::anyhow!("--threshold: {e}"))?;
        t.tighten(key, value, Source::Cli);
    }
    Ok(t)
}

/// A live run needs the key of every provider it will call: said before any work starts.
fn require_keys(pair: crate::evaluate::Pair<'_>) -> anyhow::Result<()> {
    let endpoints = settings::endpoints();
    for s in crate::evaluate::snapshots(pair) {
        let (key, var) = match s.provider() {
            Provider::Anthropic => (&endpoints.anthropic.api_key, "ANTHROPIC_API_KEY"),
            Provider::Openai => (&endpoints.openai.api_key, "OPENAI_API_KEY"),
        };
        if key.is_none() {
            bail!(
                "{var} is not set: bundle {} calls {s}; set it, or pass --replay FILE to answer from a cassette",
                pair.head.bundle.name
            );
        }
    }
    Ok(())
}

fn progress_bar(total: u64, b: &Bundle) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} runs, {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("evaluating {}", b.name));
    bar
}
