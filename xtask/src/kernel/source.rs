// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The pristine kernel tree: Debian's `linux-source-6.12` tarball unpacked
//! once into `<cache>/linux` and committed as a git repository with the tag
//! `base`, so the series can be applied with `git am` and reset cheaply.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Cache;
use super::run::output;
use anyhow::{Context as _, Result, bail};

/// The Debian package the tree comes from.
pub const PACKAGE: &str = "linux-source-6.12";
/// The tarball that package installs.
const TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";
/// The tarball's top-level directory.
const TOP: &str = "linux-source-6.12";
/// The tag on the pristine commit.
pub const BASE: &str = "base";

/// The unpacked tree.
pub struct Tree {
    pub dir: PathBuf,
    /// The Debian package version, e.g. `6.12.117-1~deb12u1`.
    pub version: String,
}

/// The installed package version.
pub fn installed_version() -> Result<String> {
    let v = output(Command::new("dpkg-query").args(["-W", "-f=${Version}", PACKAGE]))?;
    Ok(v.trim().to_string())
}

/// The tree, when the cache holds the installed version already.
pub fn cached(cache: &Cache) -> Option<Tree> {
    let version = installed_version().ok()?;
    let dir = cache.linux();
    let stamp = cache.root.join("linux.version");
    let cached = fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == version)
        && git(&dir)
            .args(["rev-parse", "-q", "--verify", "refs/tags/base"])
            .output()
            .is_ok_and(|o| o.status.success());
    cached.then_some(Tree { dir, version })
}

/// Unpacks and commits the tree unless the cache already holds this
/// version; a new version also empties the build directories (the
/// tarball's old mtimes would otherwise look older than stale objects).
/// The caller holds the cache lock.
pub fn prepare(cache: &Cache) -> Result<Tree> {
    if let Some(tree) = cached(cache) {
        println!(
            "    cached: {PACKAGE} {} in {}",
            tree.version,
            tree.dir.display()
        );
        return Ok(tree);
    }
    let version = installed_version()?;
    let dir = cache.linux();
    let stamp = cache.root.join("linux.version");
    // The repository also holds the branch `series edit` works on, its
    // backups and its worktree: never removed behind the user's back.
    if dir.exists() {
        let work = output(git(&dir).args([
            "for-each-ref",
            "--format=%(refname)",
            "refs/heads/gmem-kmap",
            "refs/gmem-kmap/",
        ]))
        .unwrap_or_default();
        let worktrees = output(git(&dir).args(["worktree", "list", "--porcelain"]))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count();
        if !work.trim().is_empty() || worktrees > 1 {
            let why = if fs::read_to_string(&stamp).is_ok_and(|s| s.trim() != version) {
                format!("{PACKAGE} is now {version}")
            } else {
                "the tree's version stamp or `base` tag is missing".to_string()
            };
            bail!(
                "{} must be made again ({why}), but it holds the work of `series edit` \
                 (branch gmem-kmap, its backups or a worktree): export it \
                 (`cargo xtask series export`), then remove {} and the edit worktree by hand",
                dir.display(),
                dir.display()
            );
        }
    }
    let _ = fs::remove_file(&stamp);
    for stale in [dir.clone(), cache.root.join("build")] {
        if stale.exists() {
            println!("    removing {}", stale.display());
            fs::remove_dir_all(&stale).with_context(|| format!("rm {}", stale.display()))?;
        }
    }
    let unpack = cache.root.join("linux.unpack");
    let _ = fs::remove_dir_all(&unpack);
    fs::create_dir_all(&unpack)?;
    println!("    unpacking {TARBALL} ({PACKAGE} {version})");
    output(
        Command::new("tar")
            .arg("-xf")
            .arg(TARBALL)
            .arg("-C")
            .arg(&unpack),
    )?;
    fs::rename(unpack.join(TOP), &dir).with_context(|| format!("mv {TOP}"))?;
    fs::remove_dir(&unpack)?;
    println!("    committing it as tag `{BASE}` (git add of ~90k files, about half a minute)");
    output(git(&dir).args(["init", "-q", "-b", "main"]))?;
    // Debian's top-level .gitignore ends with `/*`: without -f nothing is added.
    output(git(&dir).args(["add", "-A", "-f"]))?;
    let message = format!("{PACKAGE} {version}");
    output(git(&dir).args(["commit", "-q", "--no-verify", "-m", &message]))?;
    output(git(&dir).args(["tag", BASE]))?;
    fs::write(&stamp, &version)?;
    Ok(Tree { dir, version })
}

/// `git` in `dir` with a fixed identity and dates, without the user's or
/// the system's configuration or any inherited `GIT_*` variable, so that
/// what the pipeline commits and exports never depends on who runs it, and
/// a rerun gives the same ids.
pub fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    // Nothing inherited: run from a hook or `rebase -x`, GIT_DIR,
    // GIT_INDEX_FILE or GIT_CONFIG_PARAMETERS would point elsewhere.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(dir)
        // Messages parsed here (`Patch failed at`) are the untranslated ones.
        .env("LC_ALL", "C")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "gmem-kmap xtask")
        .env("GIT_AUTHOR_EMAIL", "xtask@gmem-kmap.invalid")
        .env("GIT_COMMITTER_NAME", "gmem-kmap xtask")
        .env("GIT_COMMITTER_EMAIL", "xtask@gmem-kmap.invalid")
        .env("GIT_COMMITTER_DATE", "2000-01-01T00:00:00Z")
        .env("GIT_AUTHOR_DATE", "2000-01-01T00:00:00Z")
        .args(["-c", "core.hooksPath=/dev/null", "-c", "gc.auto=0"]);
    cmd
}
