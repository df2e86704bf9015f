// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Judging a boot's console log: [`ktap::problems`], the paging depth the
//! kernel reports, and what a fault-injection boot must show. A boot passes
//! when the list of problems is empty.

use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};

use super::ktap;
use super::qemu::Paging;

/// The suite that prints the paging depth (`# paging: 5-level`).
const PAGING_SUITE: &str = "gmem_kmap";

/// A console log, as text whatever bytes the serial line gave.
pub fn read_log(log: &Path) -> Result<String> {
    let bytes = std::fs::read(log).with_context(|| format!("read {}", log.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Everything wrong with a boot's log at `paging` (see [`ktap::problems`]),
/// and kunit.py's and the programs' report. A boot test's boot has its
/// `expected` suites; the depth must be the one asked for, and may be
/// unreported only there without [`PAGING_SUITE`], which reports it
/// (`--expected-suites` trying a kernel without the series).
pub(super) fn problems(
    text: &str,
    paging: Paging,
    expected: Option<&[String]>,
) -> Result<(Vec<String>, String)> {
    let (mut problems, report) = ktap::problems(text, expected.unwrap_or_default())?;
    let found = ktap::paging(text);
    let quiet = expected.is_some_and(|e| !e.iter().any(|s| s == PAGING_SUITE));
    if !(quiet && found.is_empty()) {
        problems.extend(ktap::paging_problem(&found, paging));
    }
    Ok((problems, report))
}

/// Judges the log of a boot at `paging` with the `expected` suites, the
/// reports printed; the log's text, or the first problem and how many
/// there are.
pub fn verdict_of(log: &Path, paging: Paging, expected: &[String]) -> Result<String> {
    let text = read_log(log)?;
    let (problems, report) = problems(&text, paging, Some(expected))?;
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

/// The judgement of a benchmark script's boot: no complaint of the
/// kernel's, the script's zero exit, the depth asked for.
pub fn script_problems(text: &str, paging: Paging) -> Result<()> {
    let (problems, _) = problems(text, paging, None)?;
    match problems.first() {
        None => Ok(()),
        Some(first) => bail!("{first} (and {} more)", problems.len() - 1),
    }
}

/// Ok when `log` reports the paging depth `asked` and no other; otherwise
/// why not. A figure measured at another depth than the one it is filed
/// under would compare the wrong boots.
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

/// Judges the log of a `fail_gmem_kmap=` boot: the failure injected and
/// the window's one line saying so, or nothing injected and the window up.
pub fn window_fault_outcome(log: &str) -> Result<WindowFault> {
    let ours: Vec<&str> = log
        .lines()
        .map(str::trim)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_fault_outcomes() {
        let off = "FAULT_INJECTION: forcing a failure.\r\nname (null), interval 1\r\n\
                   gmem_kmap: cannot reserve the window: -12\r\n";
        assert_eq!(
            window_fault_outcome(off).unwrap(),
            WindowFault::Off("gmem_kmap: cannot reserve the window: -12".into())
        );
        let on = "gmem_kmap: 32 slots for 2 possible CPUs\r\n\
                  gmem_kmap: private window in each process's own page tables\r\n";
        assert_eq!(window_fault_outcome(on).unwrap(), WindowFault::On);
        // Injected, yet the window said nothing, more than one line, or
        // another error; or nothing injected and no window either.
        for bad in [
            "FAULT_INJECTION: forcing a failure.\n",
            "FAULT_INJECTION: forcing a failure.\ngmem_kmap: cannot reserve the window: -12\n\
             gmem_kmap: the core refused the window: -22\n",
            "FAULT_INJECTION: forcing a failure.\ngmem_kmap: cannot reserve the window: -22\n",
            "gmem_kmap: cannot reserve the window: -12\n",
            "",
        ] {
            assert!(window_fault_outcome(bad).is_err(), "{bad:?}");
        }
    }
}
