//! The evaluation engine: runs the base and the head bundle on every case of the pinned golden
//! set, grades each run, and hands the results to [`crate::report`].
//!
//! Every (side, case, sample) is one future; all of them run at once and the per-provider
//! limiter inside [`crate::provider::ModelClient`] decides how many calls are in flight, so wall
//! time approaches calls × latency ÷ concurrency. Identical work is done once: results are
//! looked up in the [`cache::ResultCache`] first, and concurrent requests for the same key
//! share one in-flight computation (base and head often share transcripts when only the
//! rubric or the gate changed).

pub mod budget;
pub mod cache;
pub mod caller;
pub mod checks;
pub mod estimate;
pub mod judge;
pub mod runner;

use crate::bundle::Bundle;
use crate::golden::{Case, Check, GoldenSet};
use crate::ids::Sha256;
use cache::{CacheKind, ResultCache};
use caller::{CallError, Caller};
use checks::CheckOutcome;
use judge::{JudgeIdentity, JudgeOutcome, Vote};
use runner::Transcript;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use tracing::Instrument as _;

/// The outcome of one sample, or of one case over its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// A judge check could not be decided: never a pass, never a fail.
    JudgeError,
    /// The run could not be completed (provider unavailable, budget reached).
    Error,
}

impl Verdict {
    /// As the `--json` report writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::JudgeError => "judge_error",
            Verdict::Error => "error",
        }
    }
}

/// One judge check's result on one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeResult {
    /// The judge identity this check was graded under (`sha256:` of snapshot, params, rubric).
    pub judge_sha256: Sha256,
    pub rubric: String,
    #[serde(flatten)]
    pub outcome: JudgeOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRun {
    pub sample: u32,
    pub verdict: Verdict,
    /// Why the sample could not run (with [`Verdict::Error`]).
    pub error: Option<String>,
    /// Served from the result cache rather than a model.
    pub cached: bool,
    pub transcript: Option<Transcript>,
    pub checks: Vec<CheckOutcome>,
    pub judge: Vec<JudgeResult>,
}

impl SampleRun {
    /// The judge's verdict on this sample as a whole: every judge check decided and passed.
    /// `None` without judge checks or when one errored.
    pub fn judge_verdict(&self) -> Option<bool> {
        if self.judge.is_empty() {
            return None;
        }
        self.judge.iter().map(|j| j.outcome.passed()).collect::<Option<Vec<bool>>>().map(|v| v.iter().all(|p| *p))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRun {
    pub verdict: Verdict,
    /// Samples disagreed (some passed, some failed).
    pub flaky: bool,
    pub samples: Vec<SampleRun>,
}

impl CaseRun {
    /// The first reason a sample could not run.
    pub fn error(&self) -> Option<&str> {
        self.samples.iter().find_map(|s| s.error.as_deref())
    }

    pub fn cost_usd(&self) -> Option<f64> {
        mean(self.samples.iter().map(|s| s.transcript.as_ref().and_then(|t| t.cost_usd)))
    }

    pub fn latency_ms(&self) -> Option<f64> {
        mean(self.samples.iter().map(|s| s.transcript.as_ref().map(|t| t.latency_ms as f64)))
    }
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Option<Vec<f64>> = values.collect();
    let v = v?;
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Majority over samples: a case passes when more than half its samples pass. When judge
/// errors keep it from a majority that could have been a pass, it is a judge error.
pub fn case_verdict(samples: &[SampleRun]) -> (Verdict, bool) {
    let count = |v: Verdict| samples.iter().filter(|s| s.verdict == v).count();
    let k = samples.len();
    let (pass, fail, judge_err) = (count(Verdict::Pass), count(Verdict::Fail), count(Verdict::JudgeError));
    let flaky = pass > 0 && fail > 0;
    let verdict = if count(Verdict::Error) > 0 {
        Verdict::Error
    } else if pass * 2 > k {
        Verdict::Pass
    } else if judge_err > 0 && (pass + judge_err) * 2 > k {
        Verdict::JudgeError
    } else {
        Verdict::Fail
    };
    (verdict, flaky)
}

/// One side's results, in the golden set's case order.
#[derive(Debug, Clone, PartialEq)]
pub struct SideRun {
    pub cases: Vec<CaseRun>,
}

/// What a run did besides grading: model calls made and cache hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CallCounts {
    pub model_calls: u64,
    pub cached_transcripts: u64,
    pub cached_votes: u64,
}

type Shared<T> = Arc<OnceCell<Result<T, CallError>>>;
/// Work in flight or done in this run, by key: the first asker computes, the others wait.
type InFlight<T> = Mutex<HashMap<Sha256, Shared<T>>>;

/// Runs bundles on golden sets. One engine per gate run: its budget and in-flight table are
/// the run's.
pub struct Engine {
    caller: Caller,
    cache: Arc<dyn ResultCache>,
    transcripts: InFlight<(Transcript, bool)>,
    votes: InFlight<Result<Vote, String>>,
    cached_transcripts: AtomicU64,
    cached_votes: AtomicU64,
    progress: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Engine {
    pub fn new(caller: Caller, cache: Arc<dyn ResultCache>) -> Self {
        Engine {
            caller,
            cache,
            transcripts: Mutex::new(HashMap::new()),
            votes: Mutex::new(HashMap::new()),
            cached_transcripts: AtomicU64::new(0),
            cached_votes: AtomicU64::new(0),
            progress: None,
        }
    }

    /// Called once per finished (side, case, sample).
    pub fn on_progress(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    pub fn counts(&self) -> CallCounts {
        CallCounts {
            model_calls: self.caller.calls(),
            cached_transcripts: self.cached_transcripts.load(Ordering::Relaxed),
            cached_votes: self.cached_votes.load(Ordering::Relaxed),
        }
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Runs both sides on every case, all at once.
    pub async fn run(&self, base: &Bundle, head: &Bundle, golden: &GoldenSet) -> (SideRun, SideRun) {
        tokio::join!(self.side(base, golden), self.side(head, golden))
    }

    /// Runs one bundle on every case. Sides run at the same time share work by key: a bundle
    /// that differs from another only in its judge reuses that one's transcripts.
    pub async fn side(&self, bundle: &Bundle, golden: &GoldenSet) -> SideRun {
        let cases = futures_util::future::join_all(golden.cases.iter().map(|case| self.case(bundle, case))).await;
        SideRun { cases }
    }

    async fn case(&self, bundle: &Bundle, case: &Case) -> CaseRun {
        let samples =
            futures_util::future::join_all((0..bundle.eval.samples).map(|s| self.sample(bundle, case, s))).await;
        let (verdict, flaky) = case_verdict(&samples);
        CaseRun { verdict, flaky, samples }
    }

    async fn sample(&self, bundle: &Bundle, case: &Case, sample: u32) -> SampleRun {
        let span =
            tracing::info_span!("sample", bundle = %bundle.name, version = %bundle.version, case = %case.id, sample);
        self.sample_in_span(bundle, case, sample).instrument(span).await
    }

    async fn sample_in_span(&self, bundle: &Bundle, case: &Case, sample: u32) -> SampleRun {
        let run = match self.transcript(bundle, case, sample).await {
            Ok((t, cached)) => self.grade(bundle, case, sample, t, cached).await,
            Err(e) => SampleRun {
                sample,
                verdict: Verdict::Error,
                error: Some(e.to_string()),
                cached: false,
                transcript: None,
                checks: Vec::new(),
                judge: Vec::new(),
            },
        };
        if let Some(f) = &self.progress {
            f();
        }
        run
    }

    async fn grade(&self, bundle: &Bundle, case: &Case, sample: u32, t: Transcript, cached: bool) -> SampleRun {
        let checks: Vec<CheckOutcome> =
            case.checks.iter().filter_map(|c| checks::evaluate(c, &t, &bundle.tools)).collect();
        let mut judged = Vec::new();
        let mut error = None;
        for c in &case.checks {
            let Check::Judge { rubric } = c else { continue };
            match self.judge(bundle, case, &t, rubric.as_deref()).await {
                Ok(j) => judged.push(j),
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        let verdict = if error.is_some() {
            Verdict::Error
        } else if checks.iter().any(|c| !c.passed) || judged.iter().any(|j| j.outcome.passed() == Some(false)) {
            Verdict::Fail
        } else if judged.iter().any(|j| j.outcome.passed().is_none()) {
            Verdict::JudgeError
        } else {
            Verdict::Pass
        };
        SampleRun { sample, verdict, error, cached, transcript: Some(t), checks, judge: judged }
    }

    /// The transcript of one run: from the cache, from a run already in flight, or run now.
    async fn transcript(&self, bundle: &Bundle, case: &Case, sample: u32) -> Result<(Transcript, bool), CallError> {
        let origin = self.caller.client().origin(bundle.model.snapshot.provider());
        let key = cache::transcript_key(bundle, case, sample, &origin);
        let cell = shared(&self.transcripts, key);
        cell.get_or_init(|| async {
            if let Some(t) = self.lookup::<Transcript>(CacheKind::Transcript, &key).await? {
                self.cached_transcripts.fetch_add(1, Ordering::Relaxed);
                return Ok((t, true));
            }
            let t = runner::run(&self.caller, bundle, case, sample).await?;
            self.store(CacheKind::Transcript, &key, &t).await?;
            Ok((t, false))
        })
        .await
        .clone()
    }

    async fn judge(
        &self,
        bundle: &Bundle,
        case: &Case,
        t: &Transcript,
        rubric: Option<&str>,
    ) -> Result<JudgeResult, CallError> {
        let Some(spec) = &bundle.eval.judge else {
            // `evalgate check` refuses this; at run time it is a judge error, never a pass,
            // and never the model under test standing in.
            return Ok(JudgeResult {
                judge_sha256: crate::canonical::key_of(&["no-judge"]),
                rubric: String::new(),
                outcome: JudgeOutcome::Error { reason: "the bundle names no judge".into(), votes: Vec::new() },
            });
        };
        let rubric = rubric.or(spec.rubric.as_deref()).unwrap_or_default();
        let identity = JudgeIdentity::new(spec, rubric);
        let text = judge::user_text(rubric, case, t);
        let req = judge::request(spec, &text);
        let origin = self.caller.client().origin(spec.snapshot.provider());
        let votes = futures_util::future::join_all((0..spec.samples).map(|v| {
            let key = cache::verdict_key(&identity, &text, v, &origin);
            let req = &req;
            async move {
                let cell = shared(&self.votes, key);
                cell.get_or_init(|| async {
                    if let Some(vote) = self.lookup::<Vote>(CacheKind::Vote, &key).await? {
                        self.cached_votes.fetch_add(1, Ordering::Relaxed);
                        return Ok(Ok(vote));
                    }
                    let vote = judge::vote(&self.caller, req, v).await?;
                    // Only readable votes are kept: an unreadable reply is asked again next run.
                    if let Ok(vote) = &vote {
                        self.store(CacheKind::Vote, &key, vote).await?;
                    }
                    Ok(vote)
                })
                .await
                .clone()
            }
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, CallError>>()?;
        Ok(JudgeResult {
            judge_sha256: identity.sha256,
            rubric: rubric.to_owned(),
            outcome: judge::decide(spec.samples, votes),
        })
    }

    /// A cached value that no longer reads (written by an older layout) is a miss.
    async fn lookup<T: serde::de::DeserializeOwned>(
        &self,
        kind: CacheKind,
        key: &Sha256,
    ) -> Result<Option<T>, CallError> {
        let Some(text) = self.cache.get(kind, key).await.map_err(CallError::Cache)? else { return Ok(None) };
        match serde_json::from_str(&text) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                tracing::warn!(kind = kind.as_str(), key = %key, error = %e, "unreadable cache entry ignored");
                Ok(None)
            }
        }
    }

    async fn store<T: Serialize>(&self, kind: CacheKind, key: &Sha256, value: &T) -> Result<(), CallError> {
        let text = serde_json::to_string(value).map_err(|e| CallError::Cache(cache::CacheError(e.to_string())))?;
        self.cache.put(kind, key, &text).await.map_err(CallError::Cache)
    }
}

fn shared<T>(map: &InFlight<T>, key: Sha256) -> Shared<T> {
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    m.entry(key).or_insert_with(|| Arc::new(OnceCell::new())).clone()
}
