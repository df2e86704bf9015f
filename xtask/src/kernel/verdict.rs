// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Judging a boot's console log with [`ktap::problems`] (a boot passes when
//! there are none), and what a fault-injection boot must show.

use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};

use super::ktap;
use super::qemu::Paging;

/// A console log, as text whatever bytes the serial line gave.
pub fn read_log(log: &Path) -> Result<String> {
    let bytes = std::fs::read(log).with_context(|| format!("read {}", log.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Judges a boot test's boot, printing the reports: its log, or why not.
pub fn verdict_of(log: &Path, paging: Paging, expected: &[String]) -> Result<String> {
    let text = read_log(log)?;
    let (problems, report) = ktap::problems(&text, paging, Some(expected))?;
    println!("    expected suites: {}", expected.join(", "));
    for line in report.lines() {
        println!("    | {line}");
    }
    for p in &problems {
        println!("    problem: {p}");
    }
    match problems.first() {
        None => Ok(text),
        Some(first) => Err(anyhow!(
            "{} problem(s), the first: {first}; log: {}",
            problems.len(),
            log.display()
        )),
    }
}

/// Judges a benchmark script's boot: its kernel's, `/init`'s, the depth.
pub fn script_problems(text: &str, paging: Paging) -> Result<()> {
    let (problems, _) = ktap::problems(text, paging, None)?;
    match problems.first() {
        None => Ok(()),
        Some(first) => bail!("{first} (and {} more)", problems.len() - 1),
    }
}

/// Ok when `log` reports the depth `asked` and no other (a figure filed
/// under another depth would compare the wrong boots).
pub fn check_paging(log: &str, asked: Paging) -> Result<()> {
    ktap::paging_problem(&ktap::paging(log), asked).map_or(Ok(()), |p| Err(anyhow!(p)))
}

/// What a `fail_gmem_kmap=` boot did to the window.
#[derive(Debug, PartialEq)]
pub enum WindowFault {
    /// Off, with its one line.
    Off(String),
    /// Up: no n-th allocation to fail.
    On,
}

/// Judges a `fail_gmem_kmap=` boot: injected with the window's one line
/// saying so, or not injected and the window up.
pub fn window_fault_outcome(log: &str) -> Result<WindowFault> {
    let ours: Vec<&str> = log
        .lines()
        .map(|l| ktap::clean(l).trim())
        .filter(|l| l.starts_with("gmem_kmap:"))
        .collect();
    let injected = log.contains("FAULT_INJECTION: forcing a failure");
    match (injected, ours.as_slice()) {
        (true, [one]) if one.contains("cannot reserve the window: -12") => {
            Ok(WindowFault::Off(one.to_string()))
        }
        (true, _) => bail!(
            "failure injected; the window said {} line(s), not one ENOMEM: {ours:?}",
            ours.len()
        ),
        (false, lines) if lines.iter().any(|l| l.contains(" slots for ")) => Ok(WindowFault::On),
        (false, _) => bail!("nothing injected, and the window did not come up: {ours:?}"),
    }
}
