// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Kernel style: the series through the tree's `scripts/checkpatch.pl
//! --strict` in one run; any report fails the stage. The crates `cargo
//! vendor` copied verbatim ([`VENDORED`]) are not kernel code: their diffs
//! are left out of what checkpatch reads.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::source::{Tree, series_patches};
use anyhow::{Context as _, Result, ensure};

/// Where the vendored crates sit in the tree.
const VENDORED: &str = "arch/x86/mm/gmem_kmap/vendor/";

/// Runs checkpatch on the patches in `dir`, the vendored files left out.
pub fn check(tree: &Tree, dir: &Path) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let mut cmd = Command::new("perl");
    cmd.arg("scripts/checkpatch.pl").current_dir(&tree.dir);
    cmd.args(["--strict", "--terse", "--summary-file", "--show-types"]);
    // Debian's python3, with the `ply` and `git` modules spdxcheck.py
    // needs, before any pyenv or venv one.
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("/usr/bin:/bin:{path}"));
    let patches = series_patches(dir)?;
    for patch in &patches {
        let name = patch.file_name().context("a patch")?;
        let (text, left_out) = without_vendored(&fs::read_to_string(patch)?);
        if left_out > 0 {
            println!("    {name:?}: {left_out} vendored file(s) under {VENDORED} left out");
        }
        fs::write(scratch.path().join(name), text)?;
        cmd.arg(scratch.path().join(name));
    }
    let out = cmd.output().context("cannot run scripts/checkpatch.pl")?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    verdict(out.status.success(), &stdout, &stderr)?;
    let n = patches.len();
    println!("    {n} patch(es): no errors, warnings or checks");
    Ok(())
}

/// Fails on any report (each patch with one has a summary line) or on
/// errors of checkpatch's own, e.g. a Python traceback: a check not run.
fn verdict(ok: bool, out: &str, err: &str) -> Result<()> {
    for line in out.lines().chain(err.lines()) {
        println!("      {line}");
    }
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
            skipping = false; // the signature or the next message
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
        let diff = |path: &str, line: &str| format!("diff --git a/{path} b/{path}\n{line}\n");
        let patch = format!(
            "Subject: x\n---\n{}{}{}-- \n",
            diff("mm/a.c", "+int a;"),
            diff(&format!("{VENDORED}x/lib.rs"), "+fn x() {}"),
            diff("arch/x86/mm/gmem_kmap/src/lib.rs", "+//! y")
        );
        let (kept, left_out) = without_vendored(&patch);
        assert_eq!(left_out, 1);
        assert!(kept.contains("+int a;") && kept.contains("+//! y") && !kept.contains("fn x()"));
    }

    #[test]
    fn any_report_or_error_of_its_own_fails() {
        assert!(verdict(true, "", "").is_ok());
        let summary = "/t/0001-x.patch total: 0 errors, 0 warnings, 1 checks, 9 lines checked";
        let found = format!("/t/0001-x.patch:12: CHECK:BLANK: Please use a blank line\n{summary}");
        let err = verdict(false, &found, "").unwrap_err().to_string();
        assert!(err.contains(summary), "{err}");
        let traceback = verdict(true, "", "Traceback (most recent call last):\n");
        assert!(traceback.unwrap_err().to_string().contains("its own"));
        assert!(verdict(false, "", "").is_err());
    }
}
