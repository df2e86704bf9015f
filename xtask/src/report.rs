// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Stage-by-stage progress and the final tally.

use std::time::Instant;

/// Counts checks as stages report them.
#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
    failures: Vec<String>,
}

impl Report {
    /// Runs a stage that is one check: prints its name, time and outcome.
    pub fn stage(&mut self, name: &str, run: impl FnOnce() -> Result<(), String>) {
        self.counted(name, || run().map(|()| (1, 0)).map_err(|e| (e, 0, 1)));
    }

    /// Runs a stage made of several checks; it returns (passed, failed), or
    /// a reason with whatever it counted before failing.
    pub fn counted(
        &mut self,
        name: &str,
        run: impl FnOnce() -> Result<(u32, u32), (String, u32, u32)>,
    ) {
        println!("==> {name}");
        let start = Instant::now();
        let (outcome, passed, failed) = match run() {
            Ok((p, 0)) => (String::from("ok"), p, 0),
            Ok((p, f)) => (format!("{f} failed"), p, f),
            Err((why, p, f)) => (format!("FAILED: {why}"), p, f.max(1)),
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

    /// Prints the failures and the final line; true when nothing failed.
    pub fn finish(self) -> bool {
        for f in &self.failures {
            println!("failed: {f}");
        }
        println!("{} passed, {} failed", self.passed, self.failed);
        self.failed == 0
    }
}
