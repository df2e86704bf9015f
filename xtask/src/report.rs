// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Stage-by-stage progress and the final tally.

use anyhow::Result;
use std::time::Instant;

/// Counts checks as stages report them.
#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
    failures: Vec<String>,
    skipped: Vec<String>,
}

/// How a stage ended.
enum Outcome {
    /// (passed, failed) checks.
    Counted(u32, u32),
    /// Nothing to check; why.
    Skipped(String),
    /// A reason, with whatever was counted before failing.
    Failed(String, u32, u32),
}

impl Report {
    /// Runs a stage that is one check: prints its name, time and outcome.
    pub fn stage(&mut self, name: &str, run: impl FnOnce() -> Result<()>) {
        self.counted(name, || {
            run().map(|()| (1, 0)).map_err(|e| (format!("{e:#}"), 0, 1))
        });
    }

    /// Runs a stage made of several checks; it returns (passed, failed), or
    /// a reason with whatever it counted before failing.
    pub fn counted(
        &mut self,
        name: &str,
        run: impl FnOnce() -> Result<(u32, u32), (String, u32, u32)>,
    ) {
        self.run(name, || match run() {
            Ok((p, f)) => Outcome::Counted(p, f),
            Err((why, p, f)) => Outcome::Failed(why, p, f),
        });
    }

    /// Runs a stage that may find nothing to check: `Ok(Some(why))` means
    /// skipped, which counts neither as passed nor as failed.
    pub fn skippable(&mut self, name: &str, run: impl FnOnce() -> Result<Option<String>>) {
        self.run(name, || match run() {
            Ok(None) => Outcome::Counted(1, 0),
            Ok(Some(why)) => Outcome::Skipped(why),
            Err(why) => Outcome::Failed(format!("{why:#}"), 0, 1),
        });
    }

    /// Records a stage that cannot run because a stage it needs did not
    /// pass; it counts neither way (that stage already counted, or did
    /// not run either).
    pub fn not_run(&mut self, name: &str, needs: &str) {
        let why = format!("not run: needs `{needs}`, which did not pass");
        println!("==> {name}\n<== {name}: {why}");
        self.skipped.push(format!("{name}: {why}"));
    }

    fn run(&mut self, name: &str, run: impl FnOnce() -> Outcome) {
        println!("==> {name}");
        let start = Instant::now();
        let (outcome, passed, failed) = match run() {
            Outcome::Counted(p, 0) => (String::from("ok"), p, 0),
            Outcome::Counted(p, f) => (format!("{f} failed"), p, f),
            Outcome::Skipped(why) => {
                self.skipped.push(format!("{name}: {why}"));
                (format!("skipped: {why}"), 0, 0)
            }
            Outcome::Failed(why, p, f) => (format!("FAILED: {why}"), p, f.max(1)),
        };
        println!(
            "<== {name}: {outcome} ({:.1}s)",
            start.elapsed().as_secs_f64()
        );
        if failed > 0 {
            self.failures.push(format!("{name}: {outcome}"));
        }
        self.passed += passed;
        self.failed += failed;
    }

    /// Prints what was skipped, the failures and the final line; true when
    /// nothing failed.
    pub fn finish(self) -> bool {
        for s in &self.skipped {
            println!("skipped: {s}");
        }
        for f in &self.failures {
            println!("failed: {f}");
        }
        println!("{} passed, {} failed", self.passed, self.failed);
        self.failed == 0
    }
}
