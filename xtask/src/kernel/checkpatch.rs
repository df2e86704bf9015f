// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Kernel style: every patch of the series through the tree's own
//! `scripts/checkpatch.pl --strict`. Any error, warning or check fails the
//! stage; a patch that needs one explained would relax this deliberately.
//!
//! The core's dependencies are third-party crates vendored verbatim by
//! `cargo vendor` ([`VENDORED`]); kernel style is not theirs to follow, and
//! their checksums forbid touching them. Their files are left out of what
//! checkpatch reads; the rest of that patch is checked as any other.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Where the vendored crates sit in the tree.
const VENDORED: &str = "arch/x86/mm/gmem_kmap/vendor/";

use super::series;
use super::source::Tree;
use anyhow::{Context as _, Result, anyhow};

/// Runs checkpatch on each patch in `dir` and prints its summary line.
pub fn check(tree: &Tree, dir: &Path) -> Result<()> {
    let mut problems = Vec::new();
    for patch in series::patches(dir)? {
        let name = patch.file_name().unwrap_or_default().to_string_lossy();
        let text = std::fs::read_to_string(&patch).with_context(|| format!("read {name}"))?;
        let (text, left_out) = without_vendored(&text);
        if left_out > 0 {
            println!("    {name}: {left_out} vendored file(s) under {VENDORED} left out");
        }
        let mut child = Command::new("perl")
            .arg("scripts/checkpatch.pl")
            .args(["--strict", "--no-color", "--show-types", "-"])
            .current_dir(&tree.dir)
            // Debian's python3, which has the apt-installed `ply` and `git`
            // modules spdxcheck.py needs, before any pyenv or venv one.
            .env("PATH", system_first_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run scripts/checkpatch.pl")?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(text.as_bytes())?;
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let summary = summary_line(&text).unwrap_or("no summary line");
        println!("    {name}: {summary}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.trim().is_empty() {
            // e.g. a Python traceback: a check that did not run.
            for line in stderr.lines() {
                println!("      stderr: {line}");
            }
            problems.push(format!("{name}: checkpatch printed errors of its own"));
        }
        if !out.status.success() || !is_clean(summary) {
            for line in text.lines().filter(|l| is_finding(l)) {
                println!("      {line}");
            }
            problems.push(format!("{name}: {summary}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("checkpatch --strict: {}", problems.join("; ")))
    }
}

/// The patch without the diffs of files under [`VENDORED`], and how many
/// were left out.
fn without_vendored(patch: &str) -> (String, usize) {
    let mut kept = String::with_capacity(patch.len());
    let (mut skipping, mut left_out) = (false, 0);
    for line in patch.split_inclusive('\n') {
        if let Some(paths) = line.strip_prefix("diff --git a/") {
            skipping = paths.starts_with(VENDORED);
            left_out += usize::from(skipping);
        } else if skipping && (line == "-- \n" || line.starts_with("From ")) {
            // The signature or the next message ends the last diff.
            skipping = false;
        }
        if !skipping {
            kept.push_str(line);
        }
    }
    (kept, left_out)
}

/// `/usr/bin:/bin` ahead of the caller's `PATH`.
fn system_first_path() -> String {
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("/usr/bin:/bin:{rest}")
}

/// `total: 0 errors, 0 warnings, 0 checks, 119 lines checked`.
fn summary_line(text: &str) -> Option<&str> {
    text.lines().find(|l| l.starts_with("total: "))
}

fn is_clean(summary: &str) -> bool {
    summary.starts_with("total: 0 errors, 0 warnings, 0 checks,")
}

fn is_finding(line: &str) -> bool {
    ["ERROR:", "WARNING:", "CHECK:"]
        .iter()
        .any(|p| line.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_files_are_left_out() {
        let patch = "Subject: x\n---\n a | 1 +\n\ndiff --git a/mm/a.c b/mm/a.c\n+int a;\n\
                     diff --git a/arch/x86/mm/gmem_kmap/vendor/x/lib.rs b/arch/x86/mm/gmem_kmap/vendor/x/lib.rs\n\
                     +fn x() {}\n\
                     diff --git a/arch/x86/mm/gmem_kmap/src/lib.rs b/arch/x86/mm/gmem_kmap/src/lib.rs\n+//! y\n";
        let (kept, left_out) = without_vendored(patch);
        assert_eq!(left_out, 1);
        assert!(kept.contains("+int a;") && kept.contains("+//! y"));
        assert!(!kept.contains("fn x()"));
    }

    #[test]
    fn only_an_all_zero_summary_is_clean() {
        let out = "some text\ntotal: 0 errors, 0 warnings, 0 checks, 119 lines checked\n";
        assert_eq!(
            summary_line(out),
            Some("total: 0 errors, 0 warnings, 0 checks, 119 lines checked")
        );
        assert!(is_clean(summary_line(out).unwrap()));
        assert!(!is_clean(
            "total: 0 errors, 1 warnings, 0 checks, 9 lines checked"
        ));
        assert!(!is_clean(
            "total: 0 errors, 0 warnings, 2 checks, 9 lines checked"
        ));
        assert!(!is_clean(
            "total: 1 errors, 0 warnings, 0 checks, 9 lines checked"
        ));
        assert!(is_finding("CHECK:BLANK: Please use a blank line"));
        assert!(!is_finding("#12: FILE: mm/x.c:3:"));
    }
}
