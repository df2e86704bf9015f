// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The kernel tree: Debian's `linux-source-6.12` unpacked once into
//! `<cache>/linux` and committed with the tag `base`, and the series
//! (`kernel-patch/*.patch` but the cover letter) applied to it with
//! `git am`. An unchanged series on a clean tree is left alone, so mtimes
//! stay and a rebuild does nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Cache;
use super::run::output;
use anyhow::{Context as _, Result, bail};

/// The Debian package the tree comes from.
pub const PACKAGE: &str = "linux-source-6.12";
/// The tag on the pristine commit.
pub const BASE: &str = "base";
/// The cover letter, which `git am` does not take.
pub const COVER: &str = "0000-cover-letter.patch";
/// The git notes ref that records which series HEAD holds.
const NOTES: &str = "--ref=gmem-kmap-series";

/// The unpacked tree.
pub struct Tree {
    pub dir: PathBuf,
    /// The Debian package version, e.g. `6.12.117-1~deb12u1`.
    pub version: String,
}

/// The tree, when the cache holds the installed version already.
pub fn cached(cache: &Cache) -> Option<Tree> {
    let version = output(Command::new("dpkg-query").args(["-W", "-f=${Version}", PACKAGE])).ok()?;
    let stamp = fs::read_to_string(cache.root.join("linux.version")).ok()?;
    let dir = cache.linux();
    let tagged = output(git(&dir).args(["rev-parse", "-q", "--verify", "refs/tags/base"])).is_ok();
    (stamp.trim() == version.trim() && tagged).then_some(Tree { dir, version })
}

/// Unpacks and commits the tree unless the cache already holds this
/// version; a new version also empties the build directories (the
/// tarball's old mtimes would look older than stale objects). The caller
/// holds the cache lock.
pub fn prepare(cache: &Cache) -> Result<Tree> {
    if let Some(tree) = cached(cache) {
        let (version, dir) = (&tree.version, tree.dir.display());
        println!("    cached: {PACKAGE} {version} in {dir}");
        return Ok(tree);
    }
    let version = output(Command::new("dpkg-query").args(["-W", "-f=${Version}", PACKAGE]))?;
    let (dir, stamp) = (cache.linux(), cache.root.join("linux.version"));
    // The repository also holds `series edit`'s branch, backups and
    // worktree: never removed behind the user's back.
    let refs = ["for-each-ref", "refs/heads/gmem-kmap", "refs/gmem-kmap/"];
    let work = output(git(&dir).args(refs)).is_ok_and(|r| !r.is_empty())
        || output(git(&dir).args(["worktree", "list"])).is_ok_and(|w| w.lines().count() > 1);
    if dir.exists() && work {
        bail!(
            "{} must be made again for {PACKAGE} {version}, but it holds the work of `series \
             edit` (branch gmem-kmap, its backups or a worktree): export it (`cargo xtask \
             series export`), then remove it and the edit worktree by hand",
            dir.display()
        );
    }
    let _ = fs::remove_file(&stamp);
    for stale in [&dir, &cache.root.join("build")] {
        if stale.exists() {
            println!("    removing {}", stale.display());
            fs::remove_dir_all(stale).with_context(|| format!("rm {}", stale.display()))?;
        }
    }
    fs::create_dir_all(&dir)?;
    let tarball = format!("/usr/src/{PACKAGE}.tar.xz");
    println!("    unpacking {tarball} ({PACKAGE} {version})");
    let mut tar = Command::new("tar");
    output(
        tar.args(["-xf", &tarball, "--strip-components=1", "-C"])
            .arg(&dir),
    )?;
    println!("    committing it as tag `{BASE}` (git add of ~90k files, about half a minute)");
    let message = format!("{PACKAGE} {version}");
    // Debian's top-level .gitignore ends with `/*`: without -f nothing is added.
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A", "-f"],
        &["commit", "-q", "--no-verify", "-m", &message],
        &["tag", BASE],
    ] {
        output(git(&dir).args(args))?;
    }
    fs::write(&stamp, &version)?;
    Ok(Tree { dir, version })
}

/// Applies the series in `dir` to the tree unless HEAD already is it.
pub fn apply(tree: &Tree, dir: &Path) -> Result<()> {
    let patches = series_patches(dir)?;
    let id = series_id(&tree.dir, &patches)?;
    println!("    {} patch(es) in {}", patches.len(), dir.display());
    let run = |args: &[&str]| output(git(&tree.dir).args(args));
    if run(&["notes", NOTES, "show", "HEAD"]).is_ok_and(|n| n.trim() == id)
        && run(&["status", "--porcelain"]).is_ok_and(|s| s.is_empty())
    {
        println!("    unchanged: HEAD already is this series on `{BASE}`; tree left as it is");
        return Ok(());
    }
    println!("    resetting the tree to `{BASE}` and applying");
    run(&["checkout", "-q", "-f", BASE])?;
    run(&["clean", "-fdxq"])?;
    am(&tree.dir, &patches).with_context(|| {
        let cover = fs::read_to_string(dir.join(COVER)).unwrap_or_default();
        let made_for = version_in(&cover).unwrap_or("an unnamed version (no `6.12.N` in it)");
        format!(
            "the series (cover letter: {made_for}) does not apply to {PACKAGE} {}",
            tree.version
        )
    })?;
    run(&["notes", NOTES, "add", "-f", "-m", &id, "HEAD"])?;
    println!(
        "    applied: HEAD {}",
        run(&["log", "-1", "--format=%h %s"])?.trim()
    );
    Ok(())
}

/// `git am` of `patches` in `dir`, aborted (HEAD back where it was) when
/// one does not apply.
pub fn am(dir: &Path, patches: &[PathBuf]) -> Result<()> {
    if patches.is_empty() {
        return Ok(());
    }
    let flags = [
        "am",
        "--quiet",
        "--3way",
        "--keep-cr",
        "--committer-date-is-author-date",
    ];
    let applied = output(git(dir).args(flags).args(patches));
    if applied.is_err() {
        let _ = git(dir).args(["am", "--abort"]).output();
    }
    applied.map(drop)
}

/// The `.patch` files in `dir`, sorted (the cover letter first); none when
/// there is no `dir`.
pub fn patch_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        entries => entries.with_context(|| format!("read {}", dir.display()))?,
    };
    let mut files: Vec<PathBuf> =
        (entries.map(|e| e.map(|e| e.path()))).collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "patch"));
    files.sort();
    Ok(files)
}

/// The patches `git am` takes: all but the cover letter.
pub fn series_patches(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(patch_files(dir)?
        .into_iter()
        .filter(|p| !p.ends_with(COVER))
        .collect())
}

/// The series' identity: each file's blob id (`git hash-object`) and name.
pub fn series_id(repo: &Path, files: &[PathBuf]) -> Result<String> {
    let ids = match files {
        [] => String::new(),
        _ => output(git(repo).arg("hash-object").args(files))?,
    };
    let names = files
        .iter()
        .map(|f| f.file_name().unwrap_or_default().to_string_lossy());
    let ids: Vec<String> = (ids.lines().zip(names))
        .map(|(id, name)| format!("{id} {name}"))
        .collect();
    Ok(ids.join("\n"))
}

/// The first `6.12.N...` word of `text` (the cover letter's "Made on Debian's
/// linux-source-6.12 6.12.117-1~deb12u1").
fn version_in(text: &str) -> Option<&str> {
    let mut words = text.split(|c: char| c.is_whitespace() || "(),".contains(c));
    let version = |w: &&str| {
        (w.strip_prefix("6.12.")).is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    };
    Some(words.find(version)?.trim_end_matches(['.', ':', ';']))
}

/// `git` in `dir` with a fixed identity and dates, without the user's or the
/// system's configuration, hooks or any inherited `GIT_*` variable (from a
/// hook or `rebase -x`), so that what xtask commits and exports never
/// depends on who runs it, and a rerun gives the same ids.
pub fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(name);
        }
    }
    let (who, mail, date) = (
        "gmem-kmap xtask",
        "xtask@gmem-kmap.invalid",
        "2000-01-01T00:00:00Z",
    );
    cmd.current_dir(dir).env("LC_ALL", "C").envs([
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_AUTHOR_NAME", who),
        ("GIT_AUTHOR_EMAIL", mail),
        ("GIT_AUTHOR_DATE", date),
        ("GIT_COMMITTER_NAME", who),
        ("GIT_COMMITTER_EMAIL", mail),
        ("GIT_COMMITTER_DATE", date),
    ]);
    cmd.args(["-c", "core.hooksPath=/dev/null", "-c", "gc.auto=0"]);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_the_cover_letter_names() {
        let cover = "Subject: [PATCH 0/2] x\n\nMade on linux-source-6.12 6.12.117-1~deb12u1.\n";
        assert_eq!(version_in(cover), Some("6.12.117-1~deb12u1"));
        assert_eq!(version_in("Linux 6.12 only"), None);
    }
}
