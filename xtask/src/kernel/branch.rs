// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask series edit|export [--check]`: the kernel side is worked on
//! as commits on a branch, and `kernel-patch/` is exported from it, in the
//! manner of Debian's `gbp pq` and `b4 prep`.
//!
//! - The branch [`BRANCH`] lives in the cache's kernel repository, checked
//!   out in a worktree of its own (`<cache>/edit`, or
//!   `$GMEM_KMAP_EDIT_TREE`). The boot pipeline builds from the
//!   repository's main worktree (`<cache>/linux`) and never touches it.
//! - [`SYNCED`] records the branch's tip when xtask last wrote it or
//!   exported it: a tip past it holds work of yours.
//! - Nothing here discards work. `edit` stops when the branch holds
//!   commits or changes that `kernel-patch/` lacks; when it replaces a
//!   branch, the old tip stays reachable as `refs/gmem-kmap/backup/<n>`.

use std::fs;
use std::path::{Path, PathBuf};

use super::export::{self, COVER_SOURCE};
use super::generated::{self, Scratch};
use super::run::output;
use super::source::{self, BASE, git};
use super::{Cache, series, series_dir};

/// The branch the series is edited on.
pub const BRANCH: &str = "gmem-kmap";
/// The branch's tip as xtask last left it.
const SYNCED: &str = "refs/gmem-kmap/synced";

/// `series`'s command-line help.
pub const USAGE: &str = "  series edit  make or refresh the kernel worktree with kernel-patch/ as
               commits on branch gmem-kmap, and print its path; stops when
               the branch holds work that kernel-patch/ lacks
  series export [--check]
               rewrite kernel-patch/ from that branch (git format-patch,
               reproducible); --check applies kernel-patch/ to the pristine
               tree, exports it again and fails on any differing byte";

/// Runs `series <args>`.
pub fn run(args: &[String]) -> Result<(), String> {
    let cache = Cache::from_env();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["edit"] => edit(&cache).map(|dir| println!("{}", dir.display())),
        ["export"] => export(&cache),
        ["export", "--check"] => {
            let _lock = cache.lock()?;
            let tree = prepare(&cache)?;
            series::apply(&tree, &series_dir())?;
            check(&tree.dir, &series_dir())
        }
        _ => Err(format!("unknown arguments {args:?}\n{USAGE}")),
    }
}

/// The edit worktree's path.
pub fn edit_dir(cache: &Cache) -> PathBuf {
    std::env::var_os("GMEM_KMAP_EDIT_TREE").map_or_else(|| cache.root.join("edit"), PathBuf::from)
}

/// The packages and the pristine tree. The caller holds the cache lock, or
/// the tree is there already.
fn prepare(cache: &Cache) -> Result<source::Tree, String> {
    if !super::packages::installed(source::PACKAGE) {
        super::packages::ensure()?;
    }
    source::prepare(cache)
}

/// `series edit`.
fn edit(cache: &Cache) -> Result<PathBuf, String> {
    // A boot test holds the lock for its whole run: wait for it only when
    // the tree has to be made.
    let repo = match source::cached(cache) {
        Some(tree) => tree.dir,
        None => {
            let _lock = cache.lock()?;
            prepare(cache)?.dir
        }
    };
    let dir = edit_dir(cache);
    let dir_git = |args: &[&str]| output(git(&dir).args(args));
    let has_branch = rev(&repo, &format!("refs/heads/{BRANCH}")).is_some();
    if !dir.join(".git").exists() {
        output(git(&repo).args(["worktree", "prune"]))?;
        let mut add = git(&repo);
        add.args(["worktree", "add", "--quiet"]);
        if has_branch {
            println!(
                "    checking out the existing branch {BRANCH} in {}",
                dir.display()
            );
            add.arg(&dir).arg(BRANCH);
        } else {
            add.args(["-b", BRANCH]).arg(&dir).arg(BASE);
        }
        output(&mut add)?;
        if !has_branch {
            apply(&dir)?;
            return Ok(dir);
        }
    }
    if !dir_git(&["status", "--porcelain"])?.trim().is_empty() {
        return Err(format!(
            "{} has uncommitted changes: commit them on {BRANCH} and run \
             `cargo xtask series export`, or stash them; nothing was changed",
            dir.display()
        ));
    }
    let tip = rev(&dir, "HEAD").ok_or("the edit worktree has no HEAD")?;
    let exported = Scratch::new("edit")?;
    // The branch as it is, generated files included, against kernel-patch/.
    export::format(
        &dir,
        BASE,
        &tip,
        &series_dir().join(COVER_SOURCE),
        &exported.0,
    )?;
    let difference = export::first_difference(&series_dir(), &exported.0)?;
    let synced = rev(&dir, SYNCED).is_some_and(|s| s == tip);
    match (difference, synced) {
        (None, _) => println!("    {BRANCH} holds kernel-patch/ as it is"),
        (Some(diff), true) => {
            println!("    kernel-patch/ changed since {BRANCH} was made ({diff}): re-applying it");
            let backup = backup(&dir, &tip)?;
            println!("    the old tip stays as {backup}");
            dir_git(&["reset", "--quiet", "--hard", BASE])?;
            apply(&dir)?;
        }
        (Some(diff), false) => {
            let count = dir_git(&["rev-list", "--count", &format!("{SYNCED}..HEAD")])
                .unwrap_or_else(|_| "?".into());
            return Err(format!(
                "{BRANCH} in {} holds {} commit(s) since xtask last wrote it, and kernel-patch/ \
                 lacks them ({diff}): run `cargo xtask series export` to take them in; \
                 nothing was changed",
                dir.display(),
                count.trim()
            ));
        }
    }
    refresh_generated(&dir)?;
    mark_synced(&dir)?;
    Ok(dir)
}

/// Applies `kernel-patch/` on the worktree's (clean) HEAD.
fn apply(dir: &Path) -> Result<(), String> {
    let patches = series::patches(&series_dir())?;
    println!("    applying {} patch(es) on {BRANCH}", patches.len());
    let out = git(dir)
        .args(["am", "--quiet", "--3way", "--committer-date-is-author-date"])
        .args(&patches)
        .output()
        .map_err(|e| format!("git am: {e}"))?;
    if !out.status.success() {
        let _ = git(dir).args(["am", "--abort"]).output();
        return Err(format!(
            "git am failed in {}: {}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    refresh_generated(dir)?;
    mark_synced(dir)
}

/// Puts the generated files as `src/` has them now into the branch.
fn refresh_generated(dir: &Path) -> Result<(), String> {
    let tip = rev(dir, "HEAD").ok_or("no HEAD")?;
    let fresh = generated::refresh(dir, BASE, &tip)?;
    if fresh != tip {
        println!(
            "    generated files ({}) refreshed from src/",
            generated::CRATE_DIR
        );
        output(git(dir).args(["reset", "--quiet", "--keep", &fresh]))?;
    }
    Ok(())
}

fn mark_synced(dir: &Path) -> Result<(), String> {
    output(git(dir).args(["update-ref", SYNCED, "HEAD"])).map(drop)
}

/// Keeps `tip` reachable under the next free `refs/gmem-kmap/backup/<n>`.
fn backup(dir: &Path, tip: &str) -> Result<String, String> {
    let name = (1..)
        .map(|n| format!("refs/gmem-kmap/backup/{n}"))
        .find(|r| rev(dir, r).is_none())
        .expect("some number is free");
    output(git(dir).args(["update-ref", &name, tip]))?;
    Ok(name)
}

/// `series export`: `kernel-patch/` from the branch.
fn export(cache: &Cache) -> Result<(), String> {
    let dir = edit_dir(cache);
    if !dir.join(".git").exists() {
        return Err(format!(
            "no edit worktree at {}: run `cargo xtask series edit` first",
            dir.display()
        ));
    }
    if !output(git(&dir).args(["status", "--porcelain"]))?
        .trim()
        .is_empty()
    {
        return Err(format!(
            "{} has uncommitted changes: commit them on {BRANCH} first",
            dir.display()
        ));
    }
    refresh_generated(&dir)?;
    let tip = rev(&dir, "HEAD").ok_or("no HEAD")?;
    let out = Scratch::new("export")?;
    let files = export::format(&dir, BASE, &tip, &series_dir().join(COVER_SOURCE), &out.0)?;
    let target = series_dir();
    let before = export::first_difference(&target, &out.0)?;
    for old in export::patch_files(&target)? {
        fs::remove_file(&old).map_err(|e| format!("rm {}: {e}", old.display()))?;
    }
    for file in &files {
        let name = file.file_name().unwrap_or_default();
        fs::copy(file, target.join(name)).map_err(|e| format!("copy {name:?}: {e}"))?;
    }
    mark_synced(&dir)?;
    match before {
        None => println!("    kernel-patch/ unchanged ({} files)", files.len()),
        Some(first) => println!(
            "    wrote {} files to kernel-patch/ (first change: {first}); see `git diff kernel-patch/`",
            files.len()
        ),
    }
    Ok(())
}

/// `series export --check` on a tree whose HEAD is `dir`'s series applied
/// to `base`: exports it again and compares it with `dir` byte for byte.
pub fn check(tree: &Path, dir: &Path) -> Result<(), String> {
    let tip = rev(tree, "HEAD").ok_or("no HEAD")?;
    let fresh = generated::refresh(tree, BASE, &tip)?;
    let out = Scratch::new("check")?;
    let files = export::format(tree, BASE, &fresh, &dir.join(COVER_SOURCE), &out.0)?;
    match export::first_difference(dir, &out.0)? {
        None => {
            println!(
                "    round trip: {} files re-exported byte for byte (generated files included)",
                files.len()
            );
            Ok(())
        }
        Some(first) => Err(format!(
            "kernel-patch/ is not what its series exports: {first}. Edit the series with \
             `cargo xtask series edit`, then `cargo xtask series export`"
        )),
    }
}

/// The commit `name` names, if any.
fn rev(dir: &Path, name: &str) -> Option<String> {
    output(git(dir).args(["rev-parse", "-q", "--verify", &format!("{name}^{{commit}}")]))
        .ok()
        .map(|s| s.trim().to_string())
}
