// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The series as patch files: `git format-patch` of `base..tip`, made
//! reproducible (no signature, a zero `From` id, fixed abbreviations, no
//! user configuration, the cover letter dated as the newest patch), and the
//! comparison of two such directories.
//!
//! The cover letter's text comes from `kernel-patch/cover-letter.txt`:
//! header lines `Subject:` (without the `[PATCH 00/NN]` prefix) and `Tail:`
//! (the subject of the first patch of the series' tail), a blank line, then
//! the body, in which `{patches}` becomes the number of patches, `{head}`
//! the range before the tail, e.g. `1-10`, and `{tail}` the tail's, e.g.
//! `11-14`. git adds the shortlog and the
//! diffstat, so every number in it is the series' own.

use std::fs;
use std::path::{Path, PathBuf};

use super::run::output;
use super::source::git;
use anyhow::{Context as _, Result, bail};

/// Configuration that would change what `git format-patch` writes, set to
/// git's defaults whatever the repository says. The hunk headers still
/// come from git's built-in `diff=` patterns (the kernel's
/// `.gitattributes`), which may differ between git versions: the check
/// holds for one git version (2.47 here, the one on `PATH`).
const REPRODUCIBLE: &[&str] = &[
    "-c",
    "diff.noprefix=false",
    "-c",
    "diff.mnemonicPrefix=false",
    "-c",
    "diff.context=3",
    "-c",
    "diff.interHunkContext=0",
    "-c",
    "diff.algorithm=myers",
    "-c",
    "diff.renames=true",
    "-c",
    "diff.relative=false",
    "-c",
    "format.useAutoBase=false",
    "-c",
    "format.coverFromDescription=message",
];

/// The cover letter's source, in `kernel-patch/`.
pub const COVER_SOURCE: &str = "cover-letter.txt";
/// The cover letter git writes.
pub const COVER: &str = "0000-cover-letter.patch";

/// Writes the patches of `base..tip` and the cover letter into `out` (an
/// empty directory); their paths, cover letter first.
pub fn format(
    repo: &Path,
    base: &str,
    tip: &str,
    cover_source: &Path,
    out: &Path,
) -> Result<Vec<PathBuf>> {
    let cover_text = fs::read_to_string(cover_source)
        .with_context(|| format!("read {}", cover_source.display()))?;
    let cover =
        CoverSource::parse(&cover_text).with_context(|| format!("{}", cover_source.display()))?;
    let range = format!("{base}..{tip}");
    let subjects: Vec<String> =
        output(git(repo).args(["log", "--reverse", "--format=%s", &range]))?
            .lines()
            .map(String::from)
            .collect();
    if subjects.is_empty() {
        bail!("{range} holds no commits: nothing to export");
    }
    let body = cover.body(&subjects)?;
    // The cover letter is "from" and dated as the newest patch, not as
    // whoever exports it and when.
    let authors = output(git(repo).args([
        "log",
        "--format=%at%x00%an%x00%ae%x00%ad",
        "--date=raw",
        &range,
    ]))?;
    let newest = authors
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\0');
            let at: u64 = f.next()?.parse().ok()?;
            Some((at, f.next()?, f.next()?, f.next()?))
        })
        .max_by_key(|(at, ..)| *at);
    let Some((_, name, email, date)) = newest else {
        bail!("cannot read the authors of {range}");
    };
    output(
        git(repo)
            .env("GIT_COMMITTER_NAME", name)
            .env("GIT_COMMITTER_EMAIL", email)
            .env("GIT_COMMITTER_DATE", date)
            // What the repository's own configuration could change, fixed.
            .args(REPRODUCIBLE)
            .args([
                "format-patch",
                "--quiet",
                "--cover-letter",
                "--numbered",
                "--zero-commit",
                "--no-signature",
                "--no-signoff",
                "--no-thread",
                "--no-base",
                "--subject-prefix=PATCH",
                "--filename-max-length=64",
                "--abbrev=12",
                "--output-directory",
            ])
            .arg(out)
            .arg(&range),
    )?;
    let cover_path = out.join(COVER);
    let letter = fs::read_to_string(&cover_path).with_context(|| format!("read {COVER}"))?;
    for placeholder in ["*** SUBJECT HERE ***", "*** BLURB HERE ***"] {
        if !letter.contains(placeholder) {
            bail!("git's cover letter has no `{placeholder}` to fill in");
        }
    }
    if !cover.subject.is_ascii() {
        bail!("the cover letter's subject must be ASCII");
    }
    let letter = letter
        .replacen("*** SUBJECT HERE ***", &cover.subject, 1)
        .replacen("*** BLURB HERE ***", body.trim_end(), 1);
    fs::write(&cover_path, letter)?;
    patch_files(out)
}

/// The `.patch` files in `dir`, sorted (the cover letter sorts first).
pub fn patch_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    files.sort();
    Ok(files)
}

/// The first file in which `have` and `want` differ: one missing from
/// either, or the first line whose bytes differ; `None` when identical.
pub fn first_difference(have: &Path, want: &Path) -> Result<Option<String>> {
    let names = |dir: &Path| -> Result<Vec<String>> {
        Ok(patch_files(dir)?
            .iter()
            .map(|p| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect())
    };
    let (mut all, theirs) = (names(have)?, names(want)?);
    all.extend(theirs.iter().cloned());
    all.sort();
    all.dedup();
    for name in all {
        let read = |dir: &Path| fs::read(dir.join(&name)).ok();
        match (read(have), read(want)) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) => {
                let la: Vec<&[u8]> = a.split(|&c| c == b'\n').collect();
                let lb: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
                // The first differing line, or where the shorter one ends.
                let line = la
                    .iter()
                    .zip(&lb)
                    .position(|(x, y)| x != y)
                    .unwrap_or(la.len().min(lb.len()));
                return Ok(Some(format!("{name} differs from line {}", line + 1)));
            }
            (Some(_), None) => {
                return Ok(Some(format!("{name} is not in what the series exports")));
            }
            (None, _) => return Ok(Some(format!("{name} is missing"))),
        }
    }
    Ok(None)
}

/// `kernel-patch/cover-letter.txt`, parsed.
#[derive(Debug)]
struct CoverSource {
    subject: String,
    tail: String,
    body: String,
}

impl CoverSource {
    fn parse(text: &str) -> Result<Self> {
        let (head, body) = text
            .split_once("\n\n")
            .context("no blank line between the header and the body")?;
        let field = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .with_context(|| format!("no `{name}` line in the header"))
        };
        Ok(CoverSource {
            subject: field("Subject:")?,
            tail: field("Tail:")?,
            body: body.to_string(),
        })
    }

    /// The body with `{patches}`, `{head}` and `{tail}` filled in from the
    /// series' subjects, in order.
    fn body(&self, subjects: &[String]) -> Result<String> {
        let first = subjects
            .iter()
            .position(|s| *s == self.tail)
            .with_context(|| {
                format!(
                    "the tail's first patch, `{}`, is not in the series",
                    self.tail
                )
            })?;
        let head = format!("1-{first}");
        let tail = format!("{}-{}", first + 1, subjects.len());
        Ok(self
            .body
            .replace("{patches}", &subjects.len().to_string())
            .replace("{head}", &head)
            .replace("{tail}", &tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cover_source_fills_in_the_numbers() {
        let src = CoverSource::parse(
            "Subject: KVM: x\nTail: c\n\n{patches} patches; {head} propose, {tail} compare.\n",
        )
        .unwrap();
        assert_eq!(src.subject, "KVM: x");
        let subjects = ["a", "b", "c", "d"].map(String::from);
        assert_eq!(
            src.body(&subjects).unwrap(),
            "4 patches; 1-2 propose, 3-4 compare.\n"
        );
        assert!(
            src.body(&subjects[..2])
                .unwrap_err()
                .to_string()
                .contains("`c`")
        );
        assert!(
            CoverSource::parse("Subject: x\n\nbody")
                .unwrap_err()
                .to_string()
                .contains("Tail:")
        );
    }

    #[test]
    fn names_the_first_difference() {
        let dir = std::env::temp_dir().join(format!("xtask-export-test-{}", std::process::id()));
        let (a, b) = (dir.join("a"), dir.join("b"));
        for d in [&a, &b] {
            fs::create_dir_all(d).unwrap();
            fs::write(d.join("0001-x.patch"), "same\n").unwrap();
        }
        assert_eq!(first_difference(&a, &b).unwrap(), None);
        fs::write(b.join("0002-y.patch"), "one\ntwo\n").unwrap();
        fs::write(a.join("0002-y.patch"), "one\nTWO\n").unwrap();
        assert_eq!(
            first_difference(&a, &b).unwrap().unwrap(),
            "0002-y.patch differs from line 2"
        );
        fs::write(a.join("0003-z.patch"), "").unwrap();
        fs::write(a.join("0002-y.patch"), "one\ntwo\n").unwrap();
        assert_eq!(
            first_difference(&a, &b).unwrap().unwrap(),
            "0003-z.patch is not in what the series exports"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
