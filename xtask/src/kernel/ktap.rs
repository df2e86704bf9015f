// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Reading a boot log: the KTAP that KUnit prints on the console (suites,
//! their cases, parameterised cases nested one level deeper), the kernel's
//! own complaints (oops, WARN, BUG, ...) and the initramfs' markers, judged
//! into a list of problems; an empty list is a passing boot test.
//!
//! 6.12 KUnit prints (`ktap/example-boot.log` is a real boot's log):
//!
//! ```text
//! KTAP version 1
//! 1..2
//!     KTAP version 1
//!     # Subtest: example
//!     # module: kunit_example_test
//!     1..3
//!     ok 1 example_simple_test
//!     ok 2 example_skip_test # SKIP this test should be skipped
//!         KTAP version 1
//!         # Subtest: example_params_test
//!     # example_params_test: initializing
//!         ok 1 example value 3 # SKIP unsupported param value 3
//!         ok 2 example value 2
//!     # example_params_test: pass:1 fail:0 skip:1 total:2
//!     ok 3 example_params_test
//! # example: pass:2 fail:0 skip:1 total:3
//! # Totals: pass:3 fail:0 skip:2 total:5
//! ok 1 example
//! ```
//!
//! Diagnostics (`# ...`) and other console lines may come at any
//! indentation in between; only version, subtest, plan and result lines
//! shape the tree.
//!
//! Test programs that `/init` runs may print kselftest TAP (`TAP version
//! 13`, `1..N`, `ok N name`) at the top level after KUnit is done: each such
//! document becomes one [`Ktap::programs`] entry named `selftest <program>`,
//! its results as children.
//!
//! The gmem_kmap suite also prints the paging depth the kernel runs with,
//! `# paging: 5-level` or `# paging: 4-level`, once per boot ([`paging`]).

use std::fmt::Write as _;

use super::initramfs::{DONE, RUNNING, STARTED, TEST_EXIT};
use super::qemu::Paging;

/// Console lines that mean the kernel is unhappy, whatever the tests say:
/// its own complaints, and the reports of the debug kernel's detectors
/// (KASAN and lockdep say `BUG:` and `WARNING:` too; kmemleak's scan is
/// printed by the debug initramfs).
pub const CRASH_PATTERNS: &[&str] = &[
    "Oops",
    "WARNING:",
    "BUG:",
    "KASAN",
    "Kernel panic",
    "general protection fault",
    "Call Trace:",
    // UBSAN's reports.
    "UBSAN:",
    // KFENCE's ("BUG: KFENCE: ..."), and its own summary lines.
    "KFENCE:",
    // debugobjects'.
    "ODEBUG:",
    // Page poisoning's check of a freed page, and DEBUG_VM's page dumps.
    "pagealloc: memory corruption",
    "page dumped because",
    // lockdep's, where it does not say WARNING (e.g. a lock without a key).
    "INFO: trying to register non-static key",
    "INFO: lockdep is turned off",
    "hardirqs last  enabled at",
    // kmemleak's, as its debugfs file lists them.
    "unreferenced object 0x",
    // The hung-task and RCU stall detectors.
    "blocked for more than",
    "rcu_preempt detected stalls",
    "rcu: INFO:",
];

/// A test's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

/// One result line (`ok N name`), with the results nested under it.
#[derive(Debug)]
pub struct Test {
    pub name: String,
    pub status: Status,
    /// What followed ` # ` on the result line (e.g. `SKIP reason`).
    pub directive: String,
    /// The plan (`1..N`) of the nested block, if it had one.
    pub plan: Option<usize>,
    pub children: Vec<Test>,
}

/// Everything KTAP in a log.
#[derive(Debug, Default)]
pub struct Ktap {
    /// Top-level results: the suites.
    pub suites: Vec<Test>,
    /// The top-level plan: how many suites KUnit announced.
    pub plan: Option<usize>,
    /// The `# <suite>: pass:X fail:Y skip:Z total:T` and `# Totals:` lines.
    pub summaries: Vec<String>,
    /// The TAP documents of test programs, one pseudo-suite each.
    pub programs: Vec<Test>,
}

impl Ktap {
    /// KUnit's suites, then the programs' pseudo-suites.
    pub fn all(&self) -> impl Iterator<Item = &Test> {
        self.suites.iter().chain(&self.programs)
    }
}

/// Which kind of document the lines being read belong to.
enum Doc {
    /// KUnit's KTAP: results at the top level are suites.
    Kunit,
    /// A program's kselftest TAP: results at the top level are its tests.
    Program(String),
}

/// An open block of results at one indentation.
struct Frame {
    indent: usize,
    plan: Option<usize>,
    tests: Vec<Test>,
}

/// A console line without `\r` and without a printk timestamp.
fn clean(line: &str) -> &str {
    let line = line.trim_end_matches('\r');
    if let Some(rest) = line.strip_prefix('[')
        && let Some((stamp, after)) = rest.split_once(']')
        && stamp.trim().chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return after.strip_prefix(' ').unwrap_or(after);
    }
    line
}

/// `ok 3 name # SKIP why` → (status, number, name, directive).
fn result_line(text: &str) -> Option<(Status, usize, String, String)> {
    let (ok, rest) = if let Some(r) = text.strip_prefix("not ok ") {
        (false, r)
    } else {
        (true, text.strip_prefix("ok ")?)
    };
    let (num, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let num = num.parse().ok()?;
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    // kselftest prints a skip with no name: `ok 3 # SKIP why`.
    let (name, directive) = match rest.strip_prefix("# ") {
        Some(d) => ("", d.trim()),
        None => match rest.split_once(" # ") {
            Some((n, d)) => (n, d.trim()),
            None => (rest, ""),
        },
    };
    let skip = directive.to_ascii_uppercase().starts_with("SKIP");
    let status = match (ok, skip) {
        (_, true) => Status::Skip,
        (true, false) => Status::Pass,
        (false, false) => Status::Fail,
    };
    Some((status, num, name.trim().to_string(), directive.to_string()))
}

/// Parses the KTAP in a console log; other lines are ignored.
pub fn parse(log: &str) -> Ktap {
    let mut ktap = Ktap::default();
    let mut doc = Doc::Kunit;
    let mut stack: Vec<Frame> = Vec::new();
    let mut program = String::new();
    for raw in log.lines() {
        let line = clean(raw);
        let text = line.trim_start_matches(' ');
        let indent = line.len() - text.len();
        let text = text.trim_end();
        if let Some(path) = text.strip_prefix(RUNNING) {
            program = path.rsplit('/').next().unwrap_or(path).to_string();
        }
        // A top-level version line starts a document.
        let kunit = text.starts_with("KTAP version");
        if indent == 0 && (kunit || text.starts_with("TAP version")) {
            finish(&mut ktap, doc, stack);
            doc = if kunit {
                Doc::Kunit
            } else {
                Doc::Program(program.clone())
            };
            stack = vec![Frame {
                indent: 0,
                plan: None,
                tests: Vec::new(),
            }];
            continue;
        }
        if stack.is_empty() {
            continue;
        }
        let header = text.starts_with("KTAP version")
            || text.starts_with("# Subtest:")
            || plan(text).is_some();
        if header {
            let top = stack.last().expect("root frame");
            if indent > top.indent {
                stack.push(Frame {
                    indent,
                    plan: None,
                    tests: Vec::new(),
                });
            }
            if let Some(n) = plan(text) {
                let top = stack.last_mut().expect("frame");
                if top.indent == indent {
                    top.plan = Some(n);
                }
            }
        } else if text.starts_with("# ") && text.contains(": pass:") && text.contains(" total:") {
            ktap.summaries.push(text.to_string());
        } else if let Some((status, _, name, directive)) = result_line(text) {
            let mut nested: Option<Frame> = None;
            while stack.len() > 1 && stack.last().expect("frame").indent > indent {
                nested = stack.pop();
            }
            let top = stack.last_mut().expect("root frame");
            if top.indent < indent {
                // Results with no header before them: open their block.
                stack.push(Frame {
                    indent,
                    plan: None,
                    tests: Vec::new(),
                });
            }
            let (plan, children) = nested.map_or((None, Vec::new()), |f| (f.plan, f.tests));
            stack.last_mut().expect("frame").tests.push(Test {
                name,
                status,
                directive,
                plan,
                children,
            });
        }
    }
    finish(&mut ktap, doc, stack);
    ktap
}

/// Files a finished document. Whatever is still open (a crash mid-suite)
/// stays unreported except for the top level.
fn finish(ktap: &mut Ktap, doc: Doc, stack: Vec<Frame>) {
    let Some(root) = stack.into_iter().next() else {
        return;
    };
    match doc {
        Doc::Kunit => {
            ktap.plan = root.plan;
            ktap.suites.extend(root.tests);
        }
        Doc::Program(name) => {
            let failed = root.tests.iter().any(|t| t.status == Status::Fail);
            ktap.programs.push(Test {
                name: format!("selftest {name}"),
                status: if failed { Status::Fail } else { Status::Pass },
                directive: String::new(),
                plan: root.plan,
                children: root.tests,
            });
        }
    }
}

/// The lines the test programs printed: from each top-level `TAP version`
/// to `/init`'s exit line for it, timestamps removed.
pub fn program_output(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for raw in log.lines() {
        let line = clean(raw).trim_end();
        inside |= line.starts_with("TAP version");
        if inside {
            out.push(line.to_string());
        }
        if line.starts_with(TEST_EXIT) {
            inside = false;
        }
    }
    out
}

/// `1..N` → N.
fn plan(text: &str) -> Option<usize> {
    text.strip_prefix("1..")?.trim().parse().ok()
}

/// Per-suite counts of its cases (a parameterised case counts once, with
/// its own result).
#[derive(Debug, PartialEq)]
pub struct Row {
    pub suite: String,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// The summary table's rows.
pub fn rows(ktap: &Ktap) -> Vec<Row> {
    ktap.all()
        .map(|s| {
            let count = |st: Status| s.children.iter().filter(|c| c.status == st).count();
            Row {
                suite: s.name.clone(),
                passed: count(Status::Pass),
                failed: count(Status::Fail),
                skipped: count(Status::Skip),
            }
        })
        .collect()
}

/// The table, printable.
pub fn table(ktap: &Ktap, expected: &[String]) -> String {
    let rows = rows(ktap);
    let width = rows.iter().map(|r| r.suite.len()).max().unwrap_or(0).max(5) + 2;
    let mut t = String::new();
    writeln!(
        t,
        "{:width$} {:>7} {:>7} {:>7}",
        "suite", "passed", "failed", "skipped"
    )
    .unwrap();
    for r in rows {
        let mark = if expected.contains(&r.suite) { "*" } else { "" };
        let name = format!("{}{mark}", r.suite);
        writeln!(
            t,
            "{name:width$} {:>7} {:>7} {:>7}",
            r.passed, r.failed, r.skipped
        )
        .unwrap();
    }
    t
}

/// Everything wrong with a boot, judged from its console log: failed
/// tests anywhere, skipped tests or missing suites among `expected`, cut
/// short KTAP, kernel complaints, failed /tests programs, no final marker.
pub fn problems(log: &str, ktap: &Ktap, expected: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for suite in ktap.all() {
        let is_expected = expected.contains(&suite.name);
        walk(suite, &suite.name, &mut |path, t| {
            if t.status == Status::Fail {
                problems.push(format!("not ok: {path}"));
            }
            if t.status == Status::Skip && is_expected {
                problems.push(format!(
                    "skipped in an expected suite: {path} # {}",
                    t.directive
                ));
            }
            if let Some(n) = t.plan
                && n != t.children.len()
            {
                problems.push(format!(
                    "{path}: plan 1..{n} but {} result(s)",
                    t.children.len()
                ));
            }
        });
    }
    if let Some(n) = ktap.plan
        && n != ktap.suites.len()
    {
        problems.push(format!(
            "KUnit announced {n} suite(s) (1..{n}), the log has {} result(s): output cut short?",
            ktap.suites.len()
        ));
    }
    for e in expected {
        if !ktap.all().any(|s| &s.name == e) {
            problems.push(format!("expected suite `{e}` is not in the log"));
        }
    }
    for raw in log.lines() {
        let line = clean(raw);
        if let Some(p) = CRASH_PATTERNS.iter().find(|p| line.contains(*p)) {
            problems.push(format!("kernel said `{p}`: {}", line.trim()));
        }
        if let Some(rest) = line.trim().strip_prefix(TEST_EXIT)
            && !rest.ends_with(" exit 0")
        {
            problems.push(format!("initramfs test failed: {rest}"));
        }
    }
    let printed = |marker: &str| log.lines().any(|l| clean(l).trim() == marker);
    if !printed(STARTED) {
        problems.push(format!("/init never ran (no `{STARTED}`)"));
    } else if !printed(DONE) {
        problems.push(format!("/init never finished (no `{DONE}`)"));
    }
    problems
}

/// A report in `log` that is upstream's own known false positive, not a
/// finding about the series: its description, to boot once more. Only one
/// is known. Generic KASAN under 5-level paging decides which addresses
/// have shadow from `pgtable_l5_enabled()`, which reads the boot CPU's
/// capabilities; `identify_cpu()` clears those and reads them back, and an
/// interrupt in between has its direct-map accesses reported as wild
/// (lkml.iu.edu/2606.1/11911, "kasan: Fix false-positive
/// wild-memory-access on x86 under 5-level paging", not in 6.12). It comes
/// in about one debug boot in ten, before any of the series' code runs.
/// It is recognised only whole: the wild access, in an interrupt, with
/// `identify_cpu` on the stack, before the first `gmem_kmap:` line.
pub fn upstream_false_positive(log: &str) -> Option<&'static str> {
    const WHAT: &str = "KASAN's known false positive under 5-level paging \
        (an interrupt during identify_cpu; upstream, not the series)";
    let lines: Vec<&str> = log.lines().map(clean).collect();
    let first_ours = lines
        .iter()
        .position(|l| l.contains("gmem_kmap:"))
        .unwrap_or(lines.len());
    let start = lines[..first_ours]
        .iter()
        .position(|l| l.contains("BUG: KASAN: wild-memory-access in "))?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.trim().starts_with("=========="))
        .map(|n| start + 1 + n)?;
    let report = &lines[start..end];
    let has = |what: &str| report.iter().any(|l| l.contains(what));
    (has("by task swapper/0/0") && has("<IRQ>") && has("identify_cpu")).then_some(WHAT)
}

/// The paging depths a log reports, distinct, in the order first seen:
/// the N of each `# paging: N-level` line, at any indentation and with or
/// without a printk timestamp. `kunit_info()` would put the case's name
/// before it (`# case: paging: N-level`), so that form counts too.
pub fn paging(log: &str) -> Vec<u8> {
    let mut depths = Vec::new();
    for raw in log.lines() {
        let Some(rest) = clean(raw).trim().strip_prefix("# ") else {
            continue;
        };
        let value = rest
            .strip_prefix("paging: ")
            .or_else(|| rest.split_once(": paging: ").map(|(_, v)| v));
        if let Some(n) = value.and_then(|v| v.trim().strip_suffix("-level")?.parse().ok())
            && !depths.contains(&n)
        {
            depths.push(n);
        }
    }
    depths
}

/// What is wrong with the depths a boot reported (`found`, from
/// [`paging`]) when it asked for `asked`: none at all, more than one, or
/// another one.
pub fn paging_problem(found: &[u8], asked: Paging) -> Option<String> {
    match found {
        [] => Some("no `# paging:` line: the kernel did not report its paging depth".to_string()),
        [n] if *n == asked.levels() => None,
        [n] => Some(format!(
            "asked for {asked} paging, the kernel reports {n}-level"
        )),
        _ => Some(format!(
            "asked for {asked} paging, the kernel reports more than one depth: {}",
            depths(found)
        )),
    }
}

/// `5-level, 4-level`; `none` for no depth.
pub fn depths(found: &[u8]) -> String {
    if found.is_empty() {
        return "none".into();
    }
    let names: Vec<String> = found.iter().map(|n| format!("{n}-level")).collect();
    names.join(", ")
}

fn walk(t: &Test, path: &str, f: &mut impl FnMut(&str, &Test)) {
    f(path, t);
    for c in &t.children {
        walk(c, &format!("{path}.{}", c.name), f);
    }
}

#[cfg(test)]
mod tests;
