// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The patch series (`kernel-patch/*.patch`, by name, without the cover
//! letter) applied to the `base` tag with `git am --3way`. An unchanged
//! series on an untouched tree is left alone, so file mtimes stay and make
//! rebuilds nothing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::run::output;
use super::source::{BASE, PACKAGE, Tree, git};
use anyhow::{Context as _, Result, anyhow};

/// The git notes ref that records which series HEAD holds.
const NOTES: &str = "--ref=gmem-kmap-series";

/// The patches, in the order `git am` takes them.
pub fn patches(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "patch")
                    && p.file_name()
                        .is_some_and(|n| n != "0000-cover-letter.patch")
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(anyhow!("read {}: {e}", dir.display())),
    };
    found.sort();
    Ok(found)
}

/// A hash of the series: every patch's name and contents, through
/// `git hash-object`.
pub fn series_hash(tree: &Path, patches: &[PathBuf]) -> Result<String> {
    let mut all = Vec::new();
    for p in patches {
        all.extend_from_slice(p.file_name().unwrap_or_default().as_encoded_bytes());
        all.push(0);
        all.extend(fs::read(p).with_context(|| format!("read {}", p.display()))?);
        all.push(0);
    }
    let mut child = git(tree)
        .args(["hash-object", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("git hash-object")?;
    child.stdin.take().expect("piped").write_all(&all)?;
    let out = child.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// True when HEAD is `count` commits on `base`, carries the note `hash` and
/// the work tree is clean.
fn already_applied(tree: &Path, hash: &str, count: usize) -> bool {
    let run = |args: &[&str]| output(git(tree).args(args)).map(|s| s.trim().to_string());
    run(&["notes", NOTES, "show", "HEAD"]).is_ok_and(|n| n == hash)
        && run(&["rev-list", "--count", &format!("{BASE}..HEAD")])
            .is_ok_and(|n| n == count.to_string())
        && run(&["merge-base", "--is-ancestor", BASE, "HEAD"]).is_ok()
        && run(&["status", "--porcelain"]).is_ok_and(|s| s.is_empty())
}

/// Applies the series in `dir` to the tree unless it is already there.
pub fn apply(tree: &Tree, dir: &Path) -> Result<()> {
    let patches = patches(dir)?;
    let hash = series_hash(&tree.dir, &patches)?;
    println!(
        "    {} patch(es) in {} (series {})",
        patches.len(),
        dir.display(),
        &hash[..12.min(hash.len())]
    );
    for p in &patches {
        println!(
            "      {}",
            p.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    if already_applied(&tree.dir, &hash, patches.len()) {
        println!("    unchanged: HEAD already is this series on `{BASE}`; tree left as it is");
        return Ok(());
    }
    println!("    resetting the tree to `{BASE}` and applying");
    output(git(&tree.dir).args(["checkout", "-q", "-f", BASE]))?;
    output(git(&tree.dir).args(["clean", "-fdxq"]))?;
    if !patches.is_empty() {
        let out = git(&tree.dir)
            .args(["am", "--3way", "--committer-date-is-author-date"])
            .args(&patches)
            .output()
            .context("git am")?;
        if !out.status.success() {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = git(&tree.dir).args(["am", "--abort"]).output();
            for line in text.lines() {
                println!("    | {line}");
            }
            let failed = failed_patch(&text, &patches).unwrap_or_else(|| "(unknown)".into());
            return Err(anyhow!(
                "`git am` failed at {failed}; the series was made for {}, the tree is {PACKAGE} {}",
                made_for(dir),
                tree.version
            ));
        }
    }
    output(git(&tree.dir).args(["notes", NOTES, "add", "-f", "-m", &hash, "HEAD"]))?;
    println!(
        "    applied: HEAD {}",
        output(git(&tree.dir).args(["log", "-1", "--format=%h %s"]))?.trim()
    );
    Ok(())
}

/// The patch file `git am` stopped at, from its `Patch failed at 0002 ...`.
fn failed_patch(git_output: &str, patches: &[PathBuf]) -> Option<String> {
    let line = git_output
        .lines()
        .find_map(|l| l.strip_prefix("Patch failed at "))?;
    let n: usize = line.split_whitespace().next()?.parse().ok()?;
    let p = patches.get(n.checked_sub(1)?)?;
    Some(p.file_name()?.to_string_lossy().into_owned())
}

/// The kernel version the series names: the first `6.12.N...` word in the
/// cover letter (e.g. "Based on linux-source-6.12 6.12.117-1~deb12u1").
fn made_for(dir: &Path) -> String {
    base_version(dir).unwrap_or_else(|| {
        "an unnamed version (no `6.12.N` in kernel-patch/0000-cover-letter.patch)".into()
    })
}

/// The `linux-source-6.12` version the series in `dir` was made for.
pub fn base_version(dir: &Path) -> Option<String> {
    version_in(&fs::read_to_string(dir.join("0000-cover-letter.patch")).ok()?)
}

fn version_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .find(|w| {
            w.strip_prefix("6.12.")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(|w| w.trim_end_matches(['.', ':', ';']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_failed_patch_and_the_version() {
        let patches: Vec<PathBuf> = ["0001-a.patch", "0002-b.patch"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let out =
            "Applying: a\nApplying: b\nerror: patch failed: mm/x.c:10\nPatch failed at 0002 b\n";
        assert_eq!(failed_patch(out, &patches).as_deref(), Some("0002-b.patch"));
        assert_eq!(failed_patch("fatal: nothing", &patches), None);
        let cover = "Subject: [PATCH 0/2] x\n\nBased on linux-source-6.12 6.12.117-1~deb12u1.\n";
        assert_eq!(version_in(cover).as_deref(), Some("6.12.117-1~deb12u1"));
        assert_eq!(version_in("Linux 6.12 only"), None);
    }
}
