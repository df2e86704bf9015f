// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Stage-by-stage progress (`==> stage`, then `<== stage: outcome (time)`)
//! and the final tally, `N passed, N failed`.

use anyhow::Result;
use std::time::Instant;

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
        self.run(name, || run().map(|()| None));
    }

    /// Runs a stage that may end neither passed nor failed, with
    /// `Ok(Some(outcome))` (`skipped: why`, `not run: why`).
    pub fn run(&mut self, name: &str, run: impl FnOnce() -> Result<Option<String>>) {
        println!("==> {name}");
        let start = Instant::now();
        let (outcome, passed, failed) = match run() {
            Ok(None) => ("ok".to_string(), 1, 0),
            Ok(Some(outcome)) => (outcome, 0, 0),
            Err(why) => (format!("FAILED: {why:#}"), 0, 1),
        };
        let time = start.elapsed().as_secs_f64();
        println!("<== {name}: {outcome} ({time:.1}s)");
        if outcome != "ok" {
            self.notes.push(format!("{name}: {outcome}"));
        }
        (self.passed, self.failed) = (self.passed + passed, self.failed + failed);
    }

    /// Prints the stages that did not simply pass, the tally; true when nothing failed.
    pub fn finish(self) -> bool {
        self.notes.iter().for_each(|note| println!("    {note}"));
        println!("{} passed, {} failed", self.passed, self.failed);
        self.failed == 0
    }
}
