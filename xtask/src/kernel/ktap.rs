// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Judging a boot's console log: a list of problems, none for a passing boot.
//! KUnit's KTAP is read by the tested tree's own `kunit.py parse`, which
//! KUnit's maintainers keep in step with the format ([`kunit`]); only what it
//! does not report is checked after it. The kselftest TAP of `/init`'s test
//! programs, after KUnit's, is not KTAP: [`programs`] reads it (flat). The
//! kernel's complaints ([`CRASH_PATTERNS`]), `/init`'s markers, the paging
//! depth ([`check_paging`]) and a fault-injection boot's outcome
//! ([`window_fault_outcome`]) are this project's own checks.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use serde::Deserialize;

use super::initramfs::{DONE, RUNNING, STARTED, TEST_EXIT};
use super::qemu::Paging;

/// Console lines of the kernel's complaints and its detectors' reports.
pub const CRASH_PATTERNS: &[&str] = &[
    "Oops",
    "WARNING:",
    "BUG:",
    "KASAN",
    "Kernel panic",
    "general protection fault",
    "Call Trace:",
    "UBSAN:",
    "KFENCE:",                      // "BUG: KFENCE: ...", and its own summary lines
    "ODEBUG:",                      // debugobjects
    "pagealloc: memory corruption", // page poisoning's check of a freed page
    "page dumped because",          // DEBUG_VM's page dumps
    // lockdep's, where it does not say WARNING (e.g. a lock without a key)
    "INFO: trying to register non-static key",
    "INFO: lockdep is turned off",
    "hardirqs last  enabled at",
    "unreferenced object 0x", // kmemleak's, as its debugfs file lists them
    "blocked for more than",  // the hung-task detector
    "rcu_preempt detected stalls",
    "rcu: INFO:",
];

/// A group or case of kunit.py's JSON (`kunit_json.py`), the programs' too;
/// a case's status: PASS, SKIP, ERROR (crashed or missing), else failed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Node {
    pub name: String,
    sub_groups: Vec<Node>,
    test_cases: Vec<Node>,
    status: Option<String>,
}

impl Node {
    /// Each result under this node with its path (`suite.case.param`).
    pub fn results(&self) -> Vec<(String, &str)> {
        let missing = self.name.is_empty() && self.status.as_deref() == Some("ERROR");
        let name = if missing { "<missing>" } else { &self.name };
        let own = self.status.iter().map(|s| (name.to_string(), s.as_str()));
        let nested = self.test_cases.iter().chain(&self.sub_groups);
        let nested = nested.flat_map(Node::results);
        own.chain(nested.map(|(p, s)| (format!("{name}.{p}"), s)))
            .collect()
    }
}

/// A console line without `\r` and without a printk timestamp.
pub fn clean(line: &str) -> &str {
    let line = line.trim_end_matches('\r');
    let timestamp = |s: &str| s.trim().chars().all(|c| c.is_ascii_digit() || c == '.');
    match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((stamp, after)) if timestamp(stamp) => after,
        _ => line,
    }
}

/// KUnit's suites as kunit.py reads them, and its report.
pub fn kunit(log: &str) -> Result<(Vec<Node>, String)> {
    // The programs' TAP after `/init` starts would read as more of KUnit's;
    // no KTAP, or no suite (`1..0`, an error to kunit.py): no suite.
    let part = log.split(STARTED).next().unwrap_or(log);
    let after = part.split_once("KTAP version").map(|(_, after)| after);
    let plan = after.and_then(|after| after.lines().nth(1));
    if plan.is_none_or(|plan| clean(plan).trim() == "1..0") {
        return Ok(Default::default());
    }
    // kunit.py fails on a line between `KTAP version` and `# Subtest:`,
    // where another CPU's printk may land: such lines are left out.
    let (mut text, mut header) = (String::new(), false);
    for line in part.lines() {
        let t = clean(line).trim();
        let ktap = ["#", "1..", "ok ", "not ok ", "KTAP version"];
        let ktap = ktap.iter().any(|p| t.starts_with(p));
        if ktap || !header {
            text.extend([line, "\n"]);
        }
        header = t.starts_with("KTAP version") || (header && !ktap);
    }
    let input = tempfile::NamedTempFile::new().context("a temporary file")?;
    std::fs::write(input.path(), text).context("write kunit.py's input")?;
    let tree = super::Cache::from_env().linux();
    // Its exit status says whether the tests passed, which is judged here.
    let out = Command::new("python3")
        .arg(tree.join("tools/testing/kunit/kunit.py"))
        .args(["parse", "--json"])
        .arg(input.path())
        .output()
        .context("python3 (package python3)")?;
    // The report, then the JSON from its first line `{`.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(at) = stdout.find("\n{\n") else {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("kunit.py parse (from the kernel tree) printed no JSON: {stdout}{err}");
    };
    let root: Node = serde_json::from_str(&stdout[at..]).context("kunit.py's JSON")?;
    // A suite without cases, or one announced but missing, is a case.
    let suites = root.sub_groups.into_iter().chain(root.test_cases).collect();
    Ok((suites, stdout[..at + 1].to_string()))
}

/// The programs' kselftest TAP (flat, at the start of lines), one suite
/// `selftest <program>` each; and all they printed.
pub fn programs(log: &str) -> (Vec<Node>, Vec<&str>) {
    let (mut docs, mut output, mut program, mut open) = (Vec::new(), Vec::new(), None, false);
    let node = |name: String, status: Option<&str>| Node {
        name,
        status: status.map(String::from),
        ..Node::default()
    };
    for line in log.lines().map(|l| clean(l).trim_end()) {
        if let Some(path) = line.strip_prefix(RUNNING) {
            (program, open) = (path.rsplit('/').next(), false);
        }
        let Some(name) = program else { continue };
        output.push(line);
        if line.starts_with(TEST_EXIT) {
            program = None;
        } else if line.starts_with("TAP version") {
            docs.push((node(format!("selftest {name}"), None), None));
            open = true;
        } else if let (true, Some((doc, plan))) = (open, docs.last_mut()) {
            if let Some(n) = line.strip_prefix("1..") {
                *plan = n.split_whitespace().next().and_then(|n| n.parse().ok());
            } else if let Some((case, status)) = result_line(line) {
                doc.test_cases.push(node(case.into(), Some(status)));
            }
        }
    }
    let suites = docs.into_iter().map(|(mut doc, plan)| {
        let got = doc.test_cases.len();
        if let Some(n) = plan.filter(|n: &usize| *n != got) {
            let what = format!("(plan 1..{n}, {got} result(s))");
            doc.test_cases.push(node(what, Some("ERROR")));
        }
        doc
    });
    (suites.collect(), output)
}

/// `ok 3 name # SKIP why` (kselftest may leave out the name) → name, status.
fn result_line(line: &str) -> Option<(&str, &'static str)> {
    let (status, rest) = match line.strip_prefix("not ok ") {
        Some(rest) => ("FAIL", rest),
        None => ("PASS", line.strip_prefix("ok ")?),
    };
    let (num, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    num.parse::<usize>().ok()?;
    let (name, directive) = rest.split_once("# ").unwrap_or((rest, ""));
    let skip = directive.to_uppercase().starts_with("SKIP");
    let status = if skip { "SKIP" } else { status };
    Some((name.trim().trim_start_matches("- "), status))
}

/// Everything wrong with a boot at `paging`, and kunit.py's and the
/// programs' report. `expected`: a boot test's suites (None: a benchmark
/// script's boot); without `gmem_kmap`, which prints `# paging: 5-level`,
/// among them (`--expected-suites` trying a kernel without the series) the
/// depth may go unreported.
pub fn problems(
    log: &str,
    paging: Paging,
    expected: Option<&[String]>,
) -> Result<(Vec<String>, String)> {
    let quiet = expected.is_some_and(|e| !e.iter().any(|s| s == "gmem_kmap"));
    let expected = expected.unwrap_or_default();
    let (mut suites, report) = kunit(log)?;
    // kunit.py's own findings on the KTAP's shape (a result line missing).
    let errors = report.lines().filter_map(|l| l.split_once("[ERROR] "));
    let mut problems: Vec<_> = errors.map(|(_, e)| format!("kunit.py: {e}")).collect();
    // kunit.py passes a `not ok` suite whose cases passed, and drops the
    // suites beyond KUnit's plan: a `not ok` line is then a problem itself.
    let mut results = suites.iter().flat_map(Node::results);
    if results.all(|(_, status)| matches!(status, "PASS" | "SKIP")) {
        let kernel_lines = log.split(STARTED).next().unwrap_or(log).lines();
        let not_ok = kernel_lines.filter_map(|l| clean(l).trim().strip_prefix("not ok "));
        problems.extend(not_ok.map(|l| format!("`not ok {l}`, which kunit.py does not count")));
    }
    let (programs, output) = programs(log);
    suites.extend(programs);
    for suite in &suites {
        for (path, status) in suite.results() {
            match status {
                "PASS" => {}
                "SKIP" if !expected.contains(&suite.name) => {}
                "SKIP" => problems.push(format!("skipped in an expected suite: {path}")),
                "ERROR" => problems.push(format!("crashed or missing: {path}")),
                _ => problems.push(format!("not ok: {path}")),
            }
        }
    }
    let in_log = |e: &&String| suites.iter().any(|s| &s.name == *e);
    let missing = expected.iter().filter(|e| !in_log(e));
    problems.extend(missing.map(|e| format!("expected suite `{e}` is not in the log")));
    for line in log.lines().map(clean) {
        let crash = CRASH_PATTERNS.iter().find(|p| line.contains(*p));
        problems.extend(crash.map(|p| format!("kernel said `{p}`: {}", line.trim())));
        let exit = line.trim().strip_prefix(TEST_EXIT);
        let failed = exit.filter(|rest| !rest.ends_with(" exit 0"));
        problems.extend(failed.map(|rest| format!("initramfs test failed: {rest}")));
    }
    let printed = |marker: &str| log.lines().any(|l| clean(l).trim() == marker);
    if !printed(STARTED) {
        problems.push(format!("/init never ran (no `{STARTED}`)"));
    } else if !printed(DONE) {
        problems.push(format!("/init never finished (no `{DONE}`)"));
    }
    if !(quiet && depths(log).is_empty()) {
        problems.extend(check_paging(log, paging).err().map(|e| e.to_string()));
    }
    Ok((problems, report + &output.join("\n")))
}

/// Upstream's known KASAN false positive under 5-level paging, to boot once
/// more: an interrupt while `identify_cpu()` has cleared the capabilities
/// `pgtable_l5_enabled()` reads (lkml.iu.edu/2606.1/11911, not in 6.12).
/// Only whole: wild access, in an IRQ, in `identify_cpu`, before our code.
pub fn upstream_false_positive(log: &str) -> Option<&'static str> {
    const WHAT: &str = "KASAN's known false positive under 5-level paging \
        (an interrupt during identify_cpu; upstream, not the series)";
    let lines: Vec<&str> = log.lines().map(clean).collect();
    let ours = lines.iter().position(|l| l.contains("gmem_kmap:"));
    let before_ours = &lines[..ours.unwrap_or(lines.len())];
    let bug = |l: &&str| l.contains("BUG: KASAN: wild-memory-access in ");
    let start = before_ours.iter().position(bug)?;
    let rule = |l: &&str| l.trim().starts_with("==========");
    let end = lines[start..].iter().position(rule)?;
    let report = &lines[start..start + end];
    let has = |what: &str| report.iter().any(|l| l.contains(what));
    (has("by task swapper/0/0") && has("<IRQ>") && has("identify_cpu")).then_some(WHAT)
}

/// The distinct N of `# paging: N-level` (or `# case: paging: ...`) lines.
fn depths(log: &str) -> Vec<u8> {
    let mut depths = Vec::new();
    let comment = |l| clean(l).trim().strip_prefix("# ");
    for rest in log.lines().filter_map(comment) {
        let value = rest.strip_prefix("paging: ");
        let value = value.or_else(|| rest.split_once(": paging: ").map(|(_, v)| v));
        let n = value.and_then(|v| v.strip_suffix("-level")?.parse().ok());
        depths.extend(n.filter(|n| !depths.contains(n)));
    }
    depths
}

/// Ok when `log` reports the depth `asked` and no other (a figure filed
/// under another depth would compare the wrong boots).
pub fn check_paging(log: &str, asked: Paging) -> Result<()> {
    match &depths(log)[..] {
        [] => bail!("no `# paging:` line: the kernel did not report its paging depth"),
        [n] if *n == asked as u8 => Ok(()),
        found => {
            let names: Vec<String> = found.iter().map(|n| format!("{n}-level")).collect();
            let names = names.join(", ");
            bail!("asked for {asked} paging, the kernel reports {names}")
        }
    }
}

/// A console log, as text whatever bytes the serial line gave.
pub fn read_log(log: &Path) -> Result<String> {
    let bytes = std::fs::read(log).with_context(|| format!("read {}", log.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Judges the boot logged in `log` ([`problems`]), printing the problems
/// and, for a boot test's boot, the reports: the log, or why not.
pub fn verdict_of(log: &Path, paging: Paging, expected: Option<&[String]>) -> Result<String> {
    let text = read_log(log)?;
    let never = "the log is empty: QEMU never started (see the boot stage)";
    ensure!(!text.is_empty(), never);
    let (problems, report) = problems(&text, paging, expected)?;
    if let Some(expected) = expected {
        println!("    expected suites: {}", expected.join(", "));
        report.lines().for_each(|line| println!("    | {line}"));
    }
    problems.iter().for_each(|p| println!("    problem: {p}"));
    let (n, log) = (problems.len(), log.display());
    match problems.first() {
        None => Ok(text),
        Some(first) => bail!("{n} problem(s), the first: {first}; log: {log}"),
    }
}

/// Judges a `fail_gmem_kmap=` boot: injected with the window's one line
/// saying it is off (`Some(line)`), or not injected and the window up
/// (`None`: there was no n-th allocation to fail).
pub fn window_fault_outcome(log: &str) -> Result<Option<String>> {
    let lines = log.lines().map(|l| clean(l).trim());
    let ours: Vec<&str> = lines.filter(|l| l.starts_with("gmem_kmap:")).collect();
    let injected = log.contains("FAULT_INJECTION: forcing a failure");
    match (injected, ours.as_slice()) {
        (true, [one]) if one.contains("cannot reserve the window: -12") => Ok(Some((*one).into())),
        (true, lines) => {
            let n = lines.len();
            bail!("failure injected; the window said {n} line(s), not one ENOMEM: {ours:?}")
        }
        (false, lines) if lines.iter().any(|l| l.contains(" slots for ")) => Ok(None),
        (false, _) => bail!("nothing injected, and the window did not come up: {ours:?}"),
    }
}

#[cfg(test)]
mod tests;
