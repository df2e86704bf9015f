// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask series edit|export [--check]`, as Debian's `gbp pq`: the series as
//! commits on [`BRANCH`] in `<cache>/edit`, a worktree of the kernel repository;
//! each sync is recorded so that neither side's changes are overwritten unseen.

use std::path::Path;
use std::process::Command;

use super::export;
use super::run::output;
use super::source::{self, BASE, patch_files, run as git, series_id};
use super::{Cache, series_dir};
use anyhow::{Context as _, Result, bail, ensure};
use tempfile::TempDir;

/// The branch the series is edited on.
pub const BRANCH: &str = "gmem-kmap";
/// The branch's tip as xtask last left it.
const SYNCED: &str = "refs/gmem-kmap/synced";
/// The notes ref that records `kernel-patch/` at the last sync.
const EXPORTED: &str = "--ref=gmem-kmap-exported";

/// `cargo xtask series ...`.
#[derive(clap::Subcommand, Debug)]
pub enum SeriesTask {
    /// Make the worktree, kernel-patch/ as commits on gmem-kmap; print its path.
    Edit,
    /// Rewrite kernel-patch/ from that branch with git format-patch.
    Export {
        /// Apply kernel-patch/ to the pristine tree, export it, fail on any change.
        #[arg(long, conflicts_with = "force")]
        check: bool,
        /// Export although kernel-patch/ changed under the branch.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `series <task>`.
pub fn run(task: SeriesTask) -> Result<()> {
    let cache = Cache::from_env();
    let dir = crate::settings().edit_tree.clone();
    let dir = dir.unwrap_or_else(|| cache.root.join("edit"));
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    match task {
        SeriesTask::Edit => edit(&cache, &dir).map(|_| println!("{}", dir.display())),
        SeriesTask::Export { check, force } if !check => export(&dir, force),
        SeriesTask::Export { .. } => {
            let _lock = cache.lock()?;
            let tree = source::prepare(&cache)?;
            source::apply(&tree, &series_dir())?;
            self::check(&tree.dir, &series_dir())
        }
    }
}

/// `series edit`: `kernel-patch/` onto the branch in `dir`.
fn edit(cache: &Cache, dir: &Path) -> Result<()> {
    // Locked only to make the tree: a boot test holds the lock all its run.
    if source::cached(cache).is_none() {
        let _lock = cache.lock()?;
        source::prepare(cache)?;
    }
    let (repo, path) = (cache.linux(), dir.display().to_string());
    if !dir.join(".git").exists() {
        git(&repo, &["worktree", "prune"])?;
        let _ = git(&repo, &["branch", BRANCH, BASE]); // unless it is there
        git(&repo, &["worktree", "add", "--quiet", &path, BRANCH])?;
    }
    ready(dir)?;
    let tip = rev(dir, "HEAD").context("the edit worktree has no HEAD")?;
    let synced = rev(dir, SYNCED).is_some_and(|s| s == tip);
    let now = series_id(dir, &patch_files(&series_dir())?)?;
    if Some(&tip) == rev(dir, BASE).as_ref() {
        eprintln!("    {BRANCH} is empty: applying kernel-patch/");
        apply(dir, None)?;
    } else if synced && git(dir, &["notes", EXPORTED, "show", SYNCED]).ok() != Some(now) {
        eprintln!("    kernel-patch/ changed since {BRANCH} was last synced: re-applying it");
        apply(dir, Some(&tip))?;
    } else if !synced && let (_, Some(diff)) = reexport(dir, "HEAD", &series_dir())? {
        bail!(
            "{BRANCH} in {dir:?} holds commits since xtask last wrote it that kernel-patch/ \
             lacks ({diff}): `cargo xtask series export` takes them in (rebase them first if \
             kernel-patch/ changed too); nothing was changed"
        );
    } else {
        eprintln!("    {BRANCH} holds kernel-patch/ as it is");
    }
    refresh_generated(dir)?;
    mark_synced(dir)
}

/// Refuses a worktree where work could be lost: off [`BRANCH`], mid-operation or unclean.
fn ready(dir: &Path) -> Result<()> {
    let stop = |why: String| bail!("{dir:?}: {why}; nothing was changed");
    // With --ignored: the tree's top-level `.gitignore` hides every new file.
    let status = git(dir, &["status", "--porcelain=v2", "--branch", "--ignored"])?;
    let head = format!("# branch.head {BRANCH}");
    if !status.lines().any(|l| l == head) {
        return stop(format!("HEAD is not branch {BRANCH}"));
    }
    let ops = "rebase-merge rebase-apply MERGE_HEAD CHERRY_PICK_HEAD REVERT_HEAD BISECT_LOG";
    let mut args = vec!["rev-parse", "--path-format=absolute"];
    args.extend(ops.split(' ').flat_map(|op| ["--git-path", op]));
    if let Some(op) = git(dir, &args)?.lines().find(|p| Path::new(p).exists()) {
        return stop(format!("a git operation is in progress ({op})"));
    }
    match status.lines().find(|l| !l.starts_with('#')) {
        Some(file) => stop(format!(
            "uncommitted or untracked files (`{file}`): commit them (`git add -f` new ones; \
             build with O= outside the tree) or remove them"
        )),
        None => Ok(()),
    }
}

/// `tip` of `repo` exported into a fresh directory, and where it first differs from `series`.
fn reexport(repo: &Path, tip: &str, series: &Path) -> Result<(TempDir, Option<String>)> {
    let out = tempfile::tempdir()?;
    export::format(repo, tip, series, out.path())?;
    let first = export::first_difference(series, out.path())?;
    Ok((out, first))
}

/// `kernel-patch/` on `base`; `old`, the tip replaced, is backed up and restored if `git am` fails.
fn apply(dir: &Path, old: Option<&str>) -> Result<()> {
    if let Some(old) = old {
        let backup = format!("refs/gmem-kmap/backup/{old}");
        git(dir, &["update-ref", &backup, old])?;
        eprintln!("    the old tip stays as {backup}");
        git(dir, &["reset", "--quiet", "--hard", BASE])?;
    }
    let patches = source::series_patches(&series_dir())?;
    eprintln!("    applying {} patch(es) on {BRANCH}", patches.len());
    let applied = source::am(dir, &patches);
    if let (Err(e), Some(old)) = (&applied, old) {
        let reset = git(dir, &["reset", "--quiet", "--hard", old]);
        let how = reset.map_or("NOT reset to", |_| "is back at");
        bail!("{e:#}\n{BRANCH} {how} {old}");
    }
    applied
}

/// Puts the generated files as `src/` has them now into the branch.
fn refresh_generated(dir: &Path) -> Result<()> {
    let tip = rev(dir, "HEAD").context("no HEAD")?;
    let fresh = export::refresh(dir, &tip)?;
    if fresh != tip {
        eprintln!("    generated files refreshed from src/");
        git(dir, &["reset", "--quiet", "--keep", &fresh])?;
    }
    Ok(())
}

/// Records a sync: the branch's tip and `kernel-patch/` as they are now.
fn mark_synced(dir: &Path) -> Result<()> {
    git(dir, &["update-ref", SYNCED, "HEAD"])?;
    let files = series_id(dir, &patch_files(&series_dir())?)?;
    let note = ["notes", EXPORTED, "add", "-f", "--allow-empty", "-m"];
    git(dir, &[&note[..], &[&files, SYNCED]].concat()).map(drop)
}

/// `series export`: `kernel-patch/` from the branch.
fn export(dir: &Path, force: bool) -> Result<()> {
    let hint = "no edit worktree: run `cargo xtask series edit` first";
    ensure!(dir.join(".git").exists(), "{dir:?}: {hint}");
    ready(dir)?;
    refresh_generated(dir)?;
    let target = series_dir();
    let (out, first) = reexport(dir, "HEAD", &target)?;
    let files = patch_files(out.path())?;
    let recorded = git(dir, &["notes", EXPORTED, "show", SYNCED]).ok();
    let moved = recorded != Some(series_id(dir, &patch_files(&target)?)?);
    ensure!(
        first.is_none() || !moved || force,
        "kernel-patch/ changed since {BRANCH} was last synced (a pull, a hand edit) and the \
         branch lacks that: `series edit` takes it in if the branch has no work of yours, \
         `series export --force` overwrites it; nothing was changed"
    );
    output(Command::new("rm").arg("-f").args(patch_files(&target)?))?;
    output(Command::new("cp").args(&files).arg(&target))?;
    mark_synced(dir)?;
    let change = first.map_or("unchanged".into(), |f| format!("first change: {f}"));
    eprintln!("    kernel-patch/: {} files, {change}", files.len());
    Ok(())
}

/// `series export --check`: `tree`'s HEAD (`dir` on `base`) re-exported must be `dir` exactly.
pub fn check(tree: &Path, dir: &Path) -> Result<()> {
    let (out, first) = reexport(tree, &export::refresh(tree, "HEAD")?, dir)?;
    if let Some(first) = first {
        bail!("kernel-patch/ is not what its series exports: {first}; use `series edit|export`");
    }
    let n = patch_files(out.path())?.len();
    println!("    round trip: {n} files re-exported byte for byte (generated files included)");
    Ok(())
}

/// The commit `name` names, if any.
fn rev(dir: &Path, name: &str) -> Option<String> {
    let commit = format!("{name}^{{commit}}");
    git(dir, &["rev-parse", "-q", "--verify", &commit]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn ready_refuses_what_could_lose_work() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let run = |args: &[&str]| git(dir, args).unwrap();
        run(&["init", "-q", "-b", BRANCH]);
        // Debian's top-level .gitignore: `git status` hides every new file.
        fs::write(dir.join(".gitignore"), "/*\n").unwrap();
        fs::write(dir.join("a.c"), "int a;\n").unwrap();
        run(&["add", "-f", "."]);
        run(&["commit", "-q", "-m", "base"]);
        ready(dir).unwrap();
        let refused = |why: &str| {
            let err = ready(dir).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        };
        fs::write(dir.join("new.c"), "int b;\n").unwrap();
        fs::write(dir.join("a.c"), "int c;\n").unwrap();
        refused("uncommitted or untracked files (`1 .M");
        run(&["checkout", "-q", "a.c"]);
        refused("untracked files (`! new.c`)");
        run(&["checkout", "-q", "--detach"]);
        refused("HEAD is not branch");
        run(&["checkout", "-q", BRANCH]);
        let bisect = run(&["rev-parse", "--git-path", "BISECT_LOG"]);
        fs::write(dir.join(bisect), "").unwrap();
        refused("in progress");
    }
}
