// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Reading a boot's console log into a list of problems; an empty list is
//! a passing boot. Why each part is here:
//! - KUnit's KTAP is read by the tested tree's own
//!   `tools/testing/kunit/kunit.py parse`, which KUnit's maintainers keep in
//!   step with the format ([`kunit`]); only the few things it does not
//!   report are checked after it;
//! - the kselftest TAP of `/init`'s test programs is not KUnit's and comes
//!   after it, so [`programs`] reads it (a flat list of results);
//! - the kernel's complaints ([`CRASH_PATTERNS`]), `/init`'s markers and the
//!   paging depth ([`paging`]) are this project's own checks.

use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use serde::Deserialize;

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

/// A result, as kunit.py's JSON names it (`ERROR`: crashed, or missing).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
    Skip,
    Error,
}

/// A suite's results, each named by its path (`suite.case.param`).
#[derive(Debug)]
pub struct Suite {
    pub name: String,
    pub results: Vec<(String, Status)>,
}

/// kunit.py's JSON (its `kunit_json.py`): groups of groups and cases.
#[derive(Deserialize)]
struct Group {
    name: String,
    sub_groups: Vec<Group>,
    test_cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    status: Status,
}

/// A console line without `\r` and without a printk timestamp.
fn clean(line: &str) -> &str {
    let line = line.trim_end_matches('\r');
    if let Some((stamp, after)) = line.strip_prefix('[').and_then(|r| r.split_once("] "))
        && stamp.trim().chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return after;
    }
    line
}

/// KUnit's suites as kunit.py reads them, and its report. It is given the
/// log before `/init` starts: the programs' TAP after it would be read as
/// more of KUnit's. A log without KUnit's KTAP, or announcing no suite
/// (`1..0`, which kunit.py calls an error), has no suite.
pub fn kunit(log: &str) -> Result<(Vec<Suite>, String)> {
    let part = log.split(STARTED).next().unwrap_or(log);
    let mut after_version = part.lines().skip_while(|l| !l.contains("KTAP version"));
    if after_version
        .nth(1)
        .is_none_or(|l| clean(l).trim() == "1..0")
    {
        return Ok((Vec::new(), String::new()));
    }
    let script = super::Cache::from_env()
        .linux()
        .join("tools/testing/kunit/kunit.py");
    ensure!(
        script.exists(),
        "{} missing: the kernel tree is unpacked by `cargo xtask test`",
        script.display()
    );
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let (input, json) = (
        dir.path().join("console.log"),
        dir.path().join("kunit.json"),
    );
    // kunit.py fails on a line between `KTAP version` and `# Subtest:`,
    // where another CPU's printk may land: such lines are left out.
    let (mut text, mut header) = (String::new(), false);
    for line in part.lines() {
        let t = clean(line).trim();
        let ktap = ["#", "1..", "ok ", "not ok ", "KTAP version"]
            .iter()
            .any(|p| t.starts_with(p));
        if ktap || !header {
            text += line;
            text += "\n";
        }
        header = t.starts_with("KTAP version") || (header && !ktap);
    }
    std::fs::write(&input, text).context("write kunit.py's input")?;
    // Its exit status says whether the tests passed, which is judged here.
    let out = Command::new("python3")
        .arg(&script)
        .arg("parse")
        .arg(format!("--json={}", json.display()))
        .arg(&input)
        .output()
        .context("python3 (package python3)")?;
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = std::fs::read_to_string(&json).with_context(|| {
        let err = String::from_utf8_lossy(&out.stderr);
        format!("kunit.py parse wrote no JSON: {report}{err}")
    })?;
    let root: Group = serde_json::from_str(&json).context("kunit.py's JSON")?;
    let mut suites: Vec<Suite> = root.sub_groups.iter().map(group).collect();
    // A suite without cases, or one announced but missing, is a case of
    // the top level.
    for c in root.test_cases {
        let name = named(&c.name).to_string();
        let results = vec![(name.clone(), c.status)];
        suites.push(Suite { name, results });
    }
    Ok((suites, report))
}

fn named(name: &str) -> &str {
    if name.is_empty() { "<missing>" } else { name }
}

fn group(g: &Group) -> Suite {
    fn leaves(g: &Group, path: &str, out: &mut Vec<(String, Status)>) {
        for c in &g.test_cases {
            out.push((format!("{path}.{}", named(&c.name)), c.status));
        }
        for s in &g.sub_groups {
            leaves(s, &format!("{path}.{}", s.name), out);
        }
    }
    let mut results = Vec::new();
    leaves(g, &g.name, &mut results);
    Suite {
        name: g.name.clone(),
        results,
    }
}

/// The kselftest TAP each of `/init`'s programs prints (`TAP version 13`,
/// `1..N`, `ok N name`, at the start of a line), one suite `selftest
/// <program>` each; a plan not met is an `Error`.
pub fn programs(log: &str) -> Vec<Suite> {
    let close = |(mut suite, plan): (Suite, Option<usize>)| {
        if let Some(n) = plan.filter(|n| *n != suite.results.len()) {
            let got = suite.results.len();
            let what = format!("{} (plan 1..{n}, {got} result(s))", suite.name);
            suite.results.push((what, Status::Error));
        }
        suite
    };
    let (mut done, mut open, mut program) = (Vec::new(), None, "");
    for line in log.lines().map(|l| clean(l).trim_end()) {
        if let Some(path) = line.strip_prefix(RUNNING) {
            program = path.rsplit('/').next().unwrap_or(path);
        }
        if line.starts_with("TAP version") || line.starts_with(TEST_EXIT) {
            done.extend(open.take().map(close));
        }
        if line.starts_with("TAP version") {
            let name = format!("selftest {program}");
            open = Some((
                Suite {
                    name,
                    results: Vec::new(),
                },
                None,
            ));
        } else if let Some((suite, plan)) = &mut open {
            if let Some(n) = line.strip_prefix("1..") {
                *plan = n.split_whitespace().next().and_then(|n| n.parse().ok());
            } else if let Some((name, status)) = result_line(line) {
                suite
                    .results
                    .push((format!("{}.{name}", suite.name), status));
            }
        }
    }
    done.extend(open.map(close));
    done
}

/// `ok 3 name # SKIP why` (kselftest may leave the name out) → its name
/// and status.
fn result_line(line: &str) -> Option<(&str, Status)> {
    let (ok, rest) = match line.strip_prefix("not ok ") {
        Some(rest) => (false, rest),
        None => (true, line.strip_prefix("ok ")?),
    };
    let (num, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    num.parse::<usize>().ok()?;
    let (name, directive) = rest.split_once("# ").unwrap_or((rest, ""));
    let status = match ok {
        _ if directive.to_uppercase().starts_with("SKIP") => Status::Skip,
        true => Status::Pass,
        false => Status::Fail,
    };
    Some((name.trim().trim_start_matches("- "), status))
}

/// The lines `/init`'s programs printed: from each `running` marker to the
/// program's exit line, timestamps removed.
pub fn program_output(log: &str) -> Vec<&str> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in log.lines().map(|l| clean(l).trim_end()) {
        inside |= line.starts_with(RUNNING);
        if inside {
            out.push(line);
        }
        inside &= !line.starts_with(TEST_EXIT);
    }
    out
}

/// Everything wrong with a boot, judged from its console log, and
/// kunit.py's report: failed or crashed results anywhere, skipped ones and
/// missing suites among `expected`, kernel complaints, failed programs, no
/// final marker.
pub fn problems(log: &str, expected: &[String]) -> Result<(Vec<String>, String)> {
    let (mut suites, report) = kunit(log)?;
    // kunit.py's own findings on the KTAP's shape (a result line missing).
    let mut problems: Vec<String> = report
        .lines()
        .filter_map(|l| Some(format!("kunit.py: {}", l.split_once("[ERROR] ")?.1)))
        .collect();
    let kunit_failed = suites
        .iter()
        .flat_map(|s| &s.results)
        .any(|(_, st)| matches!(st, Status::Fail | Status::Error));
    // kunit.py passes a `not ok` suite whose cases passed, and drops the
    // suites beyond KUnit's plan: a `not ok` line is then a problem itself.
    let part = log.split(STARTED).next().unwrap_or(log);
    for line in part.lines().map(|l| clean(l).trim()) {
        if !kunit_failed && line.starts_with("not ok ") {
            problems.push(format!("`{line}`, which kunit.py does not count"));
        }
    }
    suites.extend(programs(log));
    for suite in &suites {
        for (path, status) in &suite.results {
            match status {
                Status::Fail => problems.push(format!("not ok: {path}")),
                Status::Error => problems.push(format!("crashed or missing: {path}")),
                Status::Skip if expected.contains(&suite.name) => {
                    problems.push(format!("skipped in an expected suite: {path}"));
                }
                _ => {}
            }
        }
    }
    for e in expected {
        if !suites.iter().any(|s| &s.name == e) {
            problems.push(format!("expected suite `{e}` is not in the log"));
        }
    }
    for line in log.lines().map(clean) {
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
    Ok((problems, report))
}

/// A report in `log` that is upstream's own known false positive, not a
/// finding about the series: its description, to boot once more. Generic
/// KASAN under 5-level paging decides which addresses have shadow from
/// `pgtable_l5_enabled()`, which reads the boot CPU's capabilities;
/// `identify_cpu()` clears and reads them back, and an interrupt in between
/// has its direct-map accesses reported as wild (lkml.iu.edu/2606.1/11911,
/// not in 6.12); about one debug boot in ten. Recognised only whole: the
/// wild access, in an interrupt, with `identify_cpu` on the stack, before
/// the first `gmem_kmap:` line.
pub fn upstream_false_positive(log: &str) -> Option<&'static str> {
    const WHAT: &str = "KASAN's known false positive under 5-level paging \
        (an interrupt during identify_cpu; upstream, not the series)";
    let lines: Vec<&str> = log.lines().map(clean).collect();
    let ours = lines.iter().position(|l| l.contains("gmem_kmap:"));
    let start = lines[..ours.unwrap_or(lines.len())]
        .iter()
        .position(|l| l.contains("BUG: KASAN: wild-memory-access in "))?;
    let end = lines[start..]
        .iter()
        .position(|l| l.trim().starts_with("=========="));
    let end = start + end?;
    let has = |what: &str| lines[start..end].iter().any(|l| l.contains(what));
    (has("by task swapper/0/0") && has("<IRQ>") && has("identify_cpu")).then_some(WHAT)
}

/// The paging depths a log reports, distinct, in the order first seen: the
/// N of each `# paging: N-level` line (`# case: paging: N-level` from
/// `kunit_info()`), at any indentation.
pub fn paging(log: &str) -> Vec<u8> {
    let mut depths = Vec::new();
    for line in log.lines().map(|l| clean(l).trim()) {
        let Some(rest) = line.strip_prefix("# ") else {
            continue;
        };
        let value = rest.strip_prefix("paging: ");
        let value = value.or_else(|| rest.split_once(": paging: ").map(|(_, v)| v));
        if let Some(n) = value.and_then(|v| v.strip_suffix("-level")?.parse().ok())
            && !depths.contains(&n)
        {
            depths.push(n);
        }
    }
    depths
}

/// What is wrong with the depths a boot reported (`found`, from
/// [`paging`]) when it asked for `asked`: none, another one, or more.
pub fn paging_problem(found: &[u8], asked: Paging) -> Option<String> {
    match found {
        [] => Some("no `# paging:` line: the kernel did not report its paging depth".into()),
        [n] if *n == asked.levels() => None,
        _ => Some(format!(
            "asked for {asked} paging, the kernel reports {}",
            depths(found)
        )),
    }
}

/// `5-level, 4-level`; `none` for no depth.
pub fn depths(found: &[u8]) -> String {
    let names: Vec<String> = found.iter().map(|n| format!("{n}-level")).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests;
