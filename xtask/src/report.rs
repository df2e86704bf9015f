// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Stage-by-stage progress (`==> stage`, then `<== stage: outcome (time)`)
//! and the final tally, `N passed, N failed`.

use anyhow::Result;
use std::time::Instant;

/// A stage of several checks: (passed, failed), or why it failed with what
/// it counted first (one failure at least).
pub type Counts = Result<(u32, u32), (String, u32, u32)>;

/// Counts checks as stages report them.
#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
    /// `stage: outcome` of each stage that did not simply pass.
    notes: Vec<String>,
}

impl Report {
    /// Runs a stage that is one check.
    pub fn stage(&mut self, name: &str, run: impl FnOnce() -> Result<()>) {
        self.skippable(name, || run().map(|()| None));
    }

    /// Runs a stage made of several checks.
    pub fn counted(&mut self, name: &str, run: impl FnOnce() -> Counts) {
        self.run(name, || match run() {
            Ok((p, 0)) => ("ok".into(), p, 0),
            Ok((p, f)) => (format!("{f} failed"), p, f),
            Err((why, p, f)) => (format!("FAILED: {why}"), p, f.max(1)),
        });
    }

    /// Runs a stage that may find nothing to check: `Ok(Some(why))`, it is
    /// skipped, which counts neither as passed nor as failed.
    pub fn skippable(&mut self, name: &str, run: impl FnOnce() -> Result<Option<String>>) {
        self.run(name, || match run() {
            Ok(None) => ("ok".into(), 1, 0),
            Ok(Some(why)) => (format!("skipped: {why}"), 0, 0),
            Err(why) => (format!("FAILED: {why:#}"), 0, 1),
        });
    }

    /// Reports a stage not run as one it needs did not pass (and counted).
    pub fn not_run(&mut self, name: &str, needs: &str) {
        self.run(name, || {
            (
                format!("not run: needs `{needs}`, which did not pass"),
                0,
                0,
            )
        });
    }

    /// Prints the lines around `run` (the outcome, the checks passed and
    /// failed) and counts them.
    fn run(&mut self, name: &str, run: impl FnOnce() -> (String, u32, u32)) {
        println!("==> {name}");
        let start = Instant::now();
        let (outcome, passed, failed) = run();
        let time = start.elapsed().as_secs_f64();
        println!("<== {name}: {outcome} ({time:.1}s)");
        if outcome != "ok" {
            self.notes.push(format!("{name}: {outcome}"));
        }
        (self.passed, self.failed) = (self.passed + passed, self.failed + failed);
    }

    /// Prints the stages that did not simply pass and the tally; true when
    /// nothing failed.
    pub fn finish(self) -> bool {
        self.notes.iter().for_each(|note| println!("    {note}"));
        println!("{} passed, {} failed", self.passed, self.failed);
        self.failed == 0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn failures_fail_the_run_and_skips_count_neither_way() {
        let mut r = super::Report::default();
        r.counted("a", || Ok((4, 0)));
        r.skippable("b", || Ok(Some("nothing to check".into())));
        r.not_run("c", "a");
        r.counted("d", || Err(("cannot run".into(), 2, 0)));
        assert_eq!((r.passed, r.failed), (6, 1));
        assert_eq!(r.notes[2], "d: FAILED: cannot run");
        assert!(!r.finish());
    }
}
