//! The official ONNX backend tests, run case by case: the `onnx/backend/test/data/<suite>/`
//! folders of the onnx wheel (`cargo xtask conformance` fetches them). This module owns the
//! suites, which tests are out of scope ([`Skip`], each with its reason), the run loop (one
//! line per test, a panic in one case reported as its failure), the per-op summary, the list
//! of failures and the generated CONFORMANCE.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use super::{case_dirs, check_case_guarded, Backend, Failure, ModelFacts, Tolerance};

/// The suites of `onnx/backend/test/data/`, in the order `all` runs them.
pub const SUITES: &[&str] = &["node", "pytorch-converted", "pytorch-operator", "simple"];

/// The domain of the training ops (Adagrad, Adam, Momentum, Gradient).
pub const TRAINING_DOMAIN: &str = "ai.onnx.preview.training";

/// Tests outside the engine's scope, listed as `SKIP` with the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    Training,
    Loss,
}

impl Skip {
    pub fn reason(self) -> &'static str {
        match self {
            Skip::Training => {
                "ai.onnx.preview.training op (Adagrad, Adam, Momentum, Gradient): \
                 optimiser steps for training; Wick runs inference only"
            }
            Skip::Loss => {
                "loss op (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss, incl. the expanded \
                 variants): training losses, not used at inference"
            }
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Skip::Training => "training ops (`ai.onnx.preview.training` domain)",
            Skip::Loss => "loss ops (`test_nllloss*`, `test_sce*`)",
        }
    }
}

/// Why a test is skipped, if it is: by the domains its model uses, or by its name (the expanded
/// loss tests contain no loss op, and a model that does not parse still names its test).
pub fn skip(name: &str, facts: Option<&ModelFacts>) -> Option<Skip> {
    const TRAINING_NAMES: &[&str] = &[
        "test_adagrad",
        "test_adam",
        "test_momentum",
        "test_nesterov_momentum",
        "test_gradient",
    ];
    let training_domain = facts.is_some_and(|f| f.domains.iter().any(|d| d == TRAINING_DOMAIN));
    if training_domain || TRAINING_NAMES.iter().any(|p| name.starts_with(p)) {
        return Some(Skip::Training);
    }
    if name.starts_with("test_nllloss") || name.starts_with("test_sce") {
        return Some(Skip::Loss);
    }
    None
}

#[derive(Debug)]
pub enum Verdict {
    Pass,
    Fail(Failure),
    Skip(Skip),
}

/// One test of a suite.
#[derive(Debug)]
pub struct TestResult {
    pub name: String,
    pub verdict: Verdict,
    /// The op types a failure counts against (empty unless it failed).
    pub blamed: Vec<String>,
    /// On the WebGPU backend, whether a step ran on the GPU ([`super::CaseReport::gpu`]);
    /// `None` on the CPU backend and for skips.
    pub gpu: Option<bool>,
}

impl TestResult {
    /// The line printed for it: `PASS test_abs`, `FAIL test_x: reason`, `SKIP test_y: reason`;
    /// on the WebGPU backend the name is followed by `[gpu]` or `[cpu only]`.
    pub fn line(&self) -> String {
        let name = match self.gpu {
            None => self.name.clone(),
            Some(true) => format!("{} [gpu]", self.name),
            Some(false) => format!("{} [cpu only]", self.name),
        };
        match &self.verdict {
            Verdict::Pass => format!("PASS {name}"),
            Verdict::Fail(f) => format!("FAIL {name}: {}", f.reason()),
            Verdict::Skip(s) => format!("SKIP {name}: {}", s.reason()),
        }
    }
}

/// A suite's results, in name order.
#[derive(Debug, Default)]
pub struct SuiteRun {
    pub suite: String,
    pub results: Vec<TestResult>,
    pub seconds: f64,
}

impl SuiteRun {
    fn count(&self, f: impl Fn(&Verdict) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.verdict)).count()
    }
    pub fn passed(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Pass))
    }
    pub fn failed(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Fail(_)))
    }
    pub fn skipped(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Skip(_)))
    }
    /// On the WebGPU backend: (GPU cases passed, GPU cases failed, CPU-only cases passed,
    /// CPU-only cases failed); skips count nowhere.
    pub fn gpu_counts(&self) -> [usize; 4] {
        let mut n = [0; 4];
        for r in &self.results {
            let failed = match r.verdict {
                Verdict::Pass => 0,
                Verdict::Fail(_) => 1,
                Verdict::Skip(_) => continue,
            };
            match r.gpu {
                Some(true) => n[failed] += 1,
                Some(false) => n[2 + failed] += 1,
                None => {}
            }
        }
        n
    }
    pub fn failures(&self) -> impl Iterator<Item = (&TestResult, &Failure)> {
        self.results.iter().filter_map(|r| match &r.verdict {
            Verdict::Fail(f) => Some((r, f)),
            _ => None,
        })
    }
}

/// Run every case of `data/<suite>` whose name contains `filter`, printing one line per test
/// to `out` as it finishes.
pub fn run_suite(
    data: &Path,
    suite: &str,
    filter: Option<&str>,
    tol: Tolerance,
    backend: &Backend,
    out: &mut dyn Write,
) -> io::Result<SuiteRun> {
    let root = data.join(suite);
    if !root.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no suite folder {}", root.display()),
        ));
    }
    let start = Instant::now();
    let mut run = SuiteRun {
        suite: suite.to_string(),
        ..SuiteRun::default()
    };
    for dir in case_dirs(&[root]) {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let facts = ModelFacts::read(&dir.join("model.onnx")).ok();
        let result = match skip(&name, facts.as_ref()) {
            Some(s) => TestResult {
                name,
                verdict: Verdict::Skip(s),
                blamed: Vec::new(),
                gpu: None,
            },
            None => {
                let report = check_case_guarded(&dir, tol, backend);
                let blamed = report.blamed_ops();
                let gpu = report.gpu;
                let verdict = report.failure.map_or(Verdict::Pass, Verdict::Fail);
                TestResult {
                    name,
                    verdict,
                    blamed,
                    gpu,
                }
            }
        };
        writeln!(out, "{}", result.line())?;
        out.flush()?;
        run.results.push(result);
    }
    run.seconds = start.elapsed().as_secs_f64();
    Ok(run)
}

/// Failing tests per op type, most first.
#[derive(Debug, PartialEq)]
pub struct OpRow {
    pub op: String,
    pub tests: usize,
    /// Failing tests by failure kind (unsupported, wrong, error, …).
    pub kinds: BTreeMap<&'static str, usize>,
}

impl OpRow {
    pub fn kinds_text(&self) -> String {
        let mut kinds: Vec<(&&str, &usize)> = self.kinds.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Each failing test counts once for every op type it blames.
pub fn op_summary<'a>(runs: impl IntoIterator<Item = &'a SuiteRun>) -> Vec<OpRow> {
    let mut rows: BTreeMap<String, OpRow> = BTreeMap::new();
    for run in runs {
        for (result, failure) in run.failures() {
            for op in &result.blamed {
                let row = rows.entry(op.clone()).or_insert_with(|| OpRow {
                    op: op.clone(),
                    tests: 0,
                    kinds: BTreeMap::new(),
                });
                row.tests += 1;
                *row.kinds.entry(failure.kind()).or_default() += 1;
            }
        }
    }
    let mut rows: Vec<OpRow> = rows.into_values().collect();
    rows.sort_by(|a, b| b.tests.cmp(&a.tests).then_with(|| a.op.cmp(&b.op)));
    rows
}

/// Failing tests grouped by [`Failure::cause`], biggest group first.
pub fn cause_groups(run: &SuiteRun) -> Vec<(String, Vec<(&TestResult, &Failure)>)> {
    let mut groups: BTreeMap<String, Vec<(&TestResult, &Failure)>> = BTreeMap::new();
    for (result, failure) in run.failures() {
        groups
            .entry(failure.cause())
            .or_default()
            .push((result, failure));
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    groups
}

/// The summary printed after the test lines: the op types that fail most.
pub fn print_op_summary(runs: &[SuiteRun], limit: usize, out: &mut dyn Write) -> io::Result<()> {
    let rows = op_summary(runs);
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "Failing tests by op type (a test counts for each op it blames):"
    )?;
    for row in rows.iter().take(limit) {
        writeln!(
            out,
            "  {:<32} {:>4}  {}",
            row.op,
            row.tests,
            row.kinds_text()
        )?;
    }
    if rows.len() > limit {
        writeln!(
            out,
            "  … {} more op types (all of them: --write-md)",
            rows.len() - limit
        )?;
    }
    Ok(())
}

/// The `--list-failures` file: `name: reason` per failing test (`suite/name` when several suites
/// ran).
pub fn failure_list(runs: &[SuiteRun]) -> String {
    let mut text = String::new();
    for run in runs {
        for (result, failure) in run.failures() {
            let prefix = if runs.len() > 1 {
                format!("{}/", run.suite)
            } else {
                String::new()
            };
            let _ = writeln!(text, "{prefix}{}: {}", result.name, failure.reason());
        }
    }
    text
}

/// What CONFORMANCE.md says about how it was made.
pub struct MdContext<'a> {
    /// The onnx release the test data comes from.
    pub onnx_version: &'a str,
    /// The command that regenerates the file.
    pub command: &'a str,
    pub tol: Tolerance,
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        "–".to_string()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / of as f64)
    }
}

/// CONFORMANCE.md: how to run, the figures per suite, the skips, the failing op types and every
/// failing test grouped by cause.
pub fn markdown(runs: &[SuiteRun], ctx: &MdContext) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# ONNX conformance\n");
    let _ = writeln!(
        w,
        "<!-- Generated by `{}`; change the generator \
         (worker/src/check/conformance.rs), not this file. -->\n",
        ctx.command
    );
    let _ = writeln!(
        w,
        "How the engine fares on the ONNX backend test suite: the test cases shipped in the \
         `onnx=={v}` wheel (`onnx/backend/test/data/{{node,pytorch-converted,pytorch-operator,simple}}`), \
         each a `model.onnx` with `test_data_set_*/{{input,output}}_*.pb`.\n",
        v = ctx.onnx_version
    );
    let _ = writeln!(w, "## Running it\n");
    let _ = writeln!(
        w,
        "```sh\n\
         cargo xtask conformance                        # the node suite\n\
         cargo xtask conformance --suite all            # node, pytorch-converted, pytorch-operator, simple\n\
         cargo xtask conformance --filter conv          # the tests whose name contains `conv`\n\
         cargo xtask conformance --list-failures fails.txt\n\
         {}  # regenerate this file\n\
         cargo xtask check-model path/to/case-dir...    # any ONNX-test-style folder(s)\n\
         ```\n",
        ctx.command
    );
    let _ = writeln!(
        w,
        "The first run downloads the wheel with `python3 -m pip download --no-deps \
         --only-binary=:all: onnx=={v}` and unpacks the test data into \
         `target/onnx-tests/{v}/` (never committed). The checker is the `wick-check` binary \
         (`worker/src/bin/wick-check.rs`, logic in `worker/src/check/`); xtask builds it with \
         the release profile's optimisation but `panic = \"unwind\"`, so that a panic in one \
         case is reported as that case's failure and the run goes on.\n",
        v = ctx.onnx_version
    );
    let _ = writeln!(
        w,
        "Output: one line per test (`PASS name`, `FAIL name: reason`, `SKIP name: reason`), \
         the op types that fail most, the number skipped, and last `N passed, M failed`; the \
         exit status is non-zero when anything failed.\n"
    );
    let _ = writeln!(
        w,
        "**Passing** means: the model loads, and for every data set every output has the \
         expected dtype and shape and its values match. Float elements match when \
         |got − want| ≤ {rel:e}·|want|, or, for |want| < 1, |got − want| ≤ {abs:e} \
         (`--rel`, `--abs` change these; float16 and bfloat16 outputs are held to their own \
         precision instead when it is coarser: 2⁻¹⁰ and 2⁻⁷); NaN matches NaN; every other \
         dtype must be equal (bool is stored as uint8, so those two are not told apart). \
         A load failure (unsupported op, invalid model) is a failure with the engine's typed \
         error.\n",
        rel = ctx.tol.rel,
        abs = ctx.tol.abs
    );

    let _ = writeln!(w, "## Figures\n");
    let _ = writeln!(
        w,
        "| suite | tests | passed | failed | skipped | passed of those run | time |"
    );
    let _ = writeln!(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for run in runs {
        let (p, f, s) = (run.passed(), run.failed(), run.skipped());
        let _ = writeln!(
            w,
            "| {} | {} | {p} | {f} | {s} | {} | {:.1} s |",
            run.suite,
            run.results.len(),
            pct(p, p + f),
            run.seconds
        );
    }
    let _ = writeln!(
        w,
        "\nTimes are for one run on a 2-core machine shared with other work; they vary.\n"
    );

    let _ = writeln!(w, "## Skipped\n");
    let _ = writeln!(w, "| category | tests | reason |");
    let _ = writeln!(w, "| --- | ---: | --- |");
    for kind in [Skip::Training, Skip::Loss] {
        let names: Vec<&str> = runs
            .iter()
            .flat_map(|r| &r.results)
            .filter(|r| matches!(r.verdict, Verdict::Skip(s) if s == kind))
            .map(|r| r.name.as_str())
            .collect();
        let _ = writeln!(
            w,
            "| {} | {} | {} |",
            kind.label(),
            names.len(),
            kind.reason()
        );
    }
    let _ = writeln!(w);

    let rows = op_summary(runs);
    if !rows.is_empty() {
        let _ = writeln!(w, "## Failing op types\n");
        let _ = writeln!(
            w,
            "Each failing test counts for the op types it blames: the unsupported ones, the op \
             whose kernel returned an error, or the op that produced a wrong output (for other \
             failures, every op of the model but `Constant`). Kinds: `unsupported` (no kernel \
             for this op or variant), `wrong` (dtype, shape or values), `error` (the run \
             returned an error), `load` (model rejected), `data` (test data the engine cannot \
             represent), `panic`.\n"
        );
        let _ = writeln!(w, "| op type | failing tests | kinds |");
        let _ = writeln!(w, "| --- | ---: | --- |");
        for row in &rows {
            let _ = writeln!(w, "| {} | {} | {} |", row.op, row.tests, row.kinds_text());
        }
        let _ = writeln!(w);
    }

    let _ = writeln!(w, "## Failing tests by cause\n");
    for run in runs {
        let groups = cause_groups(run);
        let _ = writeln!(w, "### {} — {} failing\n", run.suite, run.failed());
        if groups.is_empty() {
            let _ = writeln!(w, "None.\n");
            continue;
        }
        for (cause, tests) in &groups {
            let plural = if tests.len() == 1 { "" } else { "s" };
            let _ = writeln!(
                w,
                "- **{}** — {} test{plural}",
                md_escape(cause),
                tests.len()
            );
            let compact = tests.iter().all(|(_, f)| f.kind() == "unsupported");
            if compact {
                let names: Vec<String> =
                    tests.iter().map(|(r, _)| format!("`{}`", r.name)).collect();
                let _ = writeln!(w, "  {}", names.join(", "));
            } else {
                for (r, f) in tests {
                    let _ = writeln!(
                        w,
                        "  - `{}`: {}",
                        r.name,
                        md_escape(&truncate(&f.reason(), 240))
                    );
                }
            }
        }
        let _ = writeln!(w);
    }
    md
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn md_escape(text: &str) -> String {
    text.replace('|', "\\|").replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WickError;

    fn facts_with_domain(domain: &str) -> ModelFacts {
        ModelFacts {
            domains: vec![domain.to_string()],
            ..ModelFacts::default()
        }
    }

    #[test]
    fn training_and_loss_tests_are_skipped_with_a_reason() {
        assert_eq!(skip("test_adam", None), Some(Skip::Training));
        assert_eq!(
            skip("test_whatever", Some(&facts_with_domain(TRAINING_DOMAIN))),
            Some(Skip::Training)
        );
        assert_eq!(skip("test_nllloss_NCd1_expanded", None), Some(Skip::Loss));
        assert_eq!(skip("test_sce_mean_3d", None), Some(Skip::Loss));
        assert_eq!(skip("test_scatter_elements", None), None);
        assert_eq!(skip("test_abs", Some(&facts_with_domain(""))), None);
        assert!(!Skip::Loss.reason().is_empty() && !Skip::Training.reason().is_empty());
    }

    fn unsupported(op: &str) -> Failure {
        Failure::Load(WickError::UnsupportedOp {
            domain: String::new(),
            op_type: op.into(),
            opset: 13,
            detail: String::new(),
        })
    }

    fn run_of(results: Vec<(&str, Verdict, &[&str])>) -> SuiteRun {
        SuiteRun {
            suite: "node".into(),
            results: results
                .into_iter()
                .map(|(name, verdict, blamed)| TestResult {
                    name: name.into(),
                    verdict,
                    blamed: blamed.iter().map(|s| s.to_string()).collect(),
                    gpu: None,
                })
                .collect(),
            seconds: 1.0,
        }
    }

    #[test]
    fn summaries_count_failures_by_op_and_by_cause() {
        let run = run_of(vec![
            ("test_abs", Verdict::Pass, &[]),
            ("test_acos", Verdict::Fail(unsupported("Acos")), &["Acos"]),
            (
                "test_acos_example",
                Verdict::Fail(unsupported("Acos")),
                &["Acos"],
            ),
            (
                "test_atan",
                Verdict::Fail(unsupported("Atan")),
                &["Atan", "Acos"],
            ),
            (
                "test_boom",
                Verdict::Fail(Failure::Panic("index out of bounds".into())),
                &["Gather"],
            ),
            ("test_adam", Verdict::Skip(Skip::Training), &[]),
        ]);
        assert_eq!((run.passed(), run.failed(), run.skipped()), (1, 4, 1));
        let rows = op_summary([&run]);
        assert_eq!(rows[0].op, "Acos");
        assert_eq!(rows[0].tests, 3);
        assert_eq!(rows[0].kinds_text(), "unsupported 3");
        let groups = cause_groups(&run);
        assert_eq!(groups[0].0, "unsupported op Acos");
        assert_eq!(groups[0].1.len(), 2);
        let list = failure_list(std::slice::from_ref(&run));
        assert!(
            list.contains("test_boom: panic: index out of bounds\n"),
            "{list}"
        );
        assert!(
            !list.contains("test_abs") && !list.contains("test_adam"),
            "{list}"
        );
        let md = markdown(
            std::slice::from_ref(&run),
            &MdContext {
                onnx_version: "1.22.0",
                command: "cargo xtask conformance",
                tol: Tolerance::default(),
            },
        );
        assert!(md.contains("| node | 6 | 1 | 4 | 1 | 20.0% |"), "{md}");
        assert!(md.contains("**unsupported op Acos** — 2 tests"), "{md}");
    }

    #[test]
    fn lines_have_the_documented_form() {
        let pass = TestResult {
            name: "test_abs".into(),
            verdict: Verdict::Pass,
            blamed: vec![],
            gpu: None,
        };
        assert_eq!(pass.line(), "PASS test_abs");
        let fail = TestResult {
            name: "test_acos".into(),
            verdict: Verdict::Fail(unsupported("Acos")),
            blamed: vec![],
            gpu: None,
        };
        assert_eq!(
            fail.line(),
            "FAIL test_acos: operator Acos (domain '', opset 13) is not supported"
        );
        let skip = TestResult {
            name: "test_adam".into(),
            verdict: Verdict::Skip(Skip::Training),
            blamed: vec![],
            gpu: None,
        };
        assert!(skip
            .line()
            .starts_with("SKIP test_adam: ai.onnx.preview.training"));
    }

    #[test]
    fn the_webgpu_backend_tags_each_case_and_counts_gpu_cases_apart() {
        let result = |name: &str, verdict, gpu| TestResult { name: name.into(), verdict, blamed: vec![], gpu };
        let run = SuiteRun {
            suite: "node".into(),
            results: vec![
                result("test_relu", Verdict::Pass, Some(true)),
                result("test_add", Verdict::Pass, Some(true)),
                result("test_acos", Verdict::Fail(unsupported("Acos")), Some(false)),
                result("test_cast", Verdict::Pass, Some(false)),
                result("test_conv", Verdict::Fail(Failure::Panic("x".into())), Some(true)),
                result("test_adam", Verdict::Skip(Skip::Training), None),
            ],
            seconds: 1.0,
        };
        assert_eq!(run.gpu_counts(), [2, 1, 1, 1]);
        assert_eq!(run.results[0].line(), "PASS test_relu [gpu]");
        assert_eq!(run.results[3].line(), "PASS test_cast [cpu only]");
        assert!(run.results[2].line().starts_with("FAIL test_acos [cpu only]: operator Acos"));
    }
}
