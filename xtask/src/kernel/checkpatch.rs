// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Kernel style: the series through the tree's own `scripts/checkpatch.pl
//! --strict`, in one run. Any error, warning or check fails the stage.
//!
//! The core's dependencies are third-party crates vendored verbatim by
//! `cargo vendor` ([`VENDORED`]): kernel style is not theirs to follow, and
//! their checksums forbid touching them. Their diffs are left out of what
//! checkpatch reads; the rest of that patch is checked as any other.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::export::Scratch;
use super::source::{Tree, series_patches};
use anyhow::{Context as _, Result, ensure};

/// Where the vendored crates sit in the tree.
const VENDORED: &str = "arch/x86/mm/gmem_kmap/vendor/";

/// Runs checkpatch on the patches in `dir`, the vendored files left out.
pub fn check(tree: &Tree, dir: &Path) -> Result<()> {
    let scratch = Scratch::new("checkpatch")?;
    let mut checked = Vec::new();
    for patch in series_patches(dir)? {
        let name = patch.file_name().context("a patch")?.to_string_lossy();
        let text = fs::read_to_string(&patch).with_context(|| format!("read {name}"))?;
        let (text, left_out) = without_vendored(&text);
        if left_out > 0 {
            println!("    {name}: {left_out} vendored file(s) under {VENDORED} left out");
        }
        checked.push(scratch.0.join(&*name));
        fs::write(checked.last().expect("pushed"), text)?;
    }
    let out = Command::new("perl")
        .arg("scripts/checkpatch.pl")
        .args([
            "--strict",
            "--terse",
            "--summary-file",
            "--show-types",
            "--no-color",
        ])
        .args(&checked)
        .current_dir(&tree.dir)
        // Debian's python3, which has the apt-installed `ply` and `git`
        // modules spdxcheck.py needs, before any pyenv or venv one.
        .env(
            "PATH",
            format!(
                "/usr/bin:/bin:{}",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .context("cannot run scripts/checkpatch.pl")?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    verdict(
        checked.len(),
        out.status.success(),
        &text(&out.stdout),
        &text(&out.stderr),
    )
}

/// Fails on any report (a summary line names each patch that has one) or
/// on errors of checkpatch's own, e.g. a Python traceback: a check that
/// did not run.
fn verdict(patches: usize, ok: bool, out: &str, err: &str) -> Result<()> {
    let lines = out.lines().chain(err.lines());
    lines.for_each(|l| println!("      {l}"));
    let mut problems: Vec<&str> = out.lines().filter(|l| l.contains(" total: ")).collect();
    if !err.trim().is_empty() {
        problems.push("checkpatch printed errors of its own");
    }
    if !ok && problems.is_empty() {
        problems.push("checkpatch failed");
    }
    ensure!(
        problems.is_empty(),
        "checkpatch --strict: {}",
        problems.join("; ")
    );
    println!("    {patches} patch(es): 0 errors, 0 warnings, 0 checks");
    Ok(())
}

/// The patch without the diffs of files under [`VENDORED`], and how many
/// were left out.
fn without_vendored(patch: &str) -> (String, usize) {
    let (mut kept, mut skipping, mut left_out) = (String::new(), false, 0);
    for line in patch.split_inclusive('\n') {
        if let Some(paths) = line.strip_prefix("diff --git a/") {
            skipping = paths.starts_with(VENDORED);
            left_out += usize::from(skipping);
        } else if line == "-- \n" || line.starts_with("From ") {
            // The signature or the next message ends the last diff.
            skipping = false;
        }
        if !skipping {
            kept.push_str(line);
        }
    }
    (kept, left_out)
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
    fn any_report_or_error_of_its_own_fails() {
        assert!(verdict(2, true, "", "").is_ok());
        let found = "/t/0001-x.patch:12: CHECK:BLANK: Please use a blank line\n\
                     /t/0001-x.patch total: 0 errors, 0 warnings, 1 checks, 9 lines checked\n";
        let err = verdict(2, false, found, "").unwrap_err().to_string();
        assert!(
            err.contains("0001-x.patch total: 0 errors, 0 warnings, 1 checks"),
            "{err}"
        );
        let traceback = "Traceback (most recent call last):\n";
        assert!(
            verdict(2, true, "", traceback)
                .unwrap_err()
                .to_string()
                .contains("its own")
        );
        assert!(verdict(2, false, "", "").is_err());
    }
}
