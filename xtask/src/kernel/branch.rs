// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask series edit|export [--check]`: the kernel side is worked on
//! as commits on the branch [`BRANCH`] of the cache's kernel repository, in
//! a worktree of its own (`<cache>/edit`, or `$GMEM_KMAP_EDIT_TREE`), and
//! `kernel-patch/` is exported from it, as Debian's `gbp pq` does.
//!
//! Each sync sets [`SYNCED`] to the branch's tip and notes on it the files
//! of `kernel-patch/`: a tip past it holds your work, a `kernel-patch/`
//! unlike the note changed under the branch. Nothing is discarded: both
//! commands stop in a worktree off the branch, in a git operation, or not
//! clean; `edit` when the branch holds commits `kernel-patch/` lacks, and
//! `export` when `kernel-patch/` changed under the branch (unless
//! `--force`); a replaced tip stays as `refs/gmem-kmap/backup/<id>`.
//! Progress goes to stderr: `cd "$(cargo xtask series edit)"` works.

use std::fs;
use std::path::Path;

use super::export::{self, Scratch};
use super::source::{self, BASE, patch_files, run as git, series_id};
use super::{Cache, series_dir};
use anyhow::{Context as _, Result, bail, ensure};

/// The branch the series is edited on.
pub const BRANCH: &str = "gmem-kmap";
/// The branch's tip as xtask last left it.
const SYNCED: &str = "refs/gmem-kmap/synced";
/// The notes ref that records `kernel-patch/` at the last sync.
const EXPORTED: &str = "--ref=gmem-kmap-exported";

/// `cargo xtask series ...`.
#[derive(clap::Subcommand, Debug)]
pub enum SeriesTask {
    /// Make or refresh the kernel worktree with kernel-patch/ as commits on
    /// branch gmem-kmap, and print its path; stops when the branch holds
    /// work that kernel-patch/ lacks.
    Edit,
    /// Rewrite kernel-patch/ from that branch (git format-patch,
    /// reproducible); stops when kernel-patch/ changed under the branch.
    Export {
        /// Apply kernel-patch/ to the pristine tree, export it again and
        /// fail on any differing byte; writes nothing.
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
        SeriesTask::Export {
            check: false,
            force,
        } => export(&dir, force),
        SeriesTask::Export { check: true, .. } => {
            let _lock = cache.lock()?;
            let tree = prepare(&cache)?;
            source::apply(&tree, &series_dir())?;
            check(&tree.dir, &series_dir())
        }
    }
}

/// The packages and the pristine tree; the caller holds the cache lock.
fn prepare(cache: &Cache) -> Result<source::Tree> {
    if !super::packages::installed(source::PACKAGE) {
        super::packages::ensure()?;
    }
    source::prepare(cache)
}

/// `series edit`: `kernel-patch/` onto the branch in `dir`.
fn edit(cache: &Cache, dir: &Path) -> Result<()> {
    // A boot test holds the lock for its whole run: wait for it only when
    // the tree has to be made.
    let repo = match source::cached(cache) {
        Some(tree) => tree.dir,
        None => {
            let _lock = cache.lock()?;
            prepare(cache)?.dir
        }
    };
    if !dir.join(".git").exists() {
        git(&repo, &["worktree", "prune"])?;
        if rev(&repo, &format!("refs/heads/{BRANCH}")).is_none() {
            git(&repo, &["branch", BRANCH, BASE])?;
        }
        let dir = dir.display().to_string();
        git(&repo, &["worktree", "add", "--quiet", &dir, BRANCH])?;
    }
    ready(dir)?;
    let tip = rev(dir, "HEAD").context("the edit worktree has no HEAD")?;
    let synced = rev(dir, SYNCED).is_some_and(|s| s == tip);
    let now = series_id(dir, &patch_files(&series_dir())?)?;
    if Some(&tip) == rev(dir, BASE).as_ref() {
        eprintln!("    {BRANCH} is empty: applying kernel-patch/");
        apply(dir, None)?;
    } else if synced && recorded(dir) != Some(now) {
        eprintln!("    kernel-patch/ changed since {BRANCH} was last synced: re-applying it");
        apply(dir, Some(&tip))?;
    } else if !synced && let Some(diff) = difference(dir)? {
        bail!(
            "{BRANCH} in {} holds commits since xtask last wrote it, and kernel-patch/ \
             differs from what it exports ({diff}): run `cargo xtask series export` to take \
             them in (if kernel-patch/ changed too, rebase them onto it first); nothing \
             was changed",
            dir.display()
        );
    } else {
        eprintln!("    {BRANCH} holds kernel-patch/ as it is");
    }
    refresh_generated(dir)?;
    mark_synced(dir)
}

/// Refuses a worktree in which xtask could lose or misread work: not on
/// [`BRANCH`], in the middle of a git operation, or not clean.
fn ready(dir: &Path) -> Result<()> {
    let stop = |why: String| bail!("{}: {why}; nothing was changed", dir.display());
    // With --ignored: the tree's top-level `.gitignore` hides every new file.
    let status = git(dir, &["status", "--porcelain=v2", "--branch", "--ignored"])?;
    if !status
        .lines()
        .any(|l| l == format!("# branch.head {BRANCH}"))
    {
        return stop(format!("HEAD is not branch {BRANCH}"));
    }
    let ops = "rebase-merge rebase-apply MERGE_HEAD CHERRY_PICK_HEAD REVERT_HEAD BISECT_LOG";
    let mut args = vec!["rev-parse", "--path-format=absolute"];
    ops.split(' ')
        .for_each(|op| args.extend(["--git-path", op]));
    if let Some(op) = git(dir, &args)?.lines().find(|p| Path::new(p).exists()) {
        return stop(format!(
            "a git operation is in progress ({op}); finish or abort it"
        ));
    }
    match status.lines().find(|l| !l.starts_with('#')) {
        Some(file) => stop(format!(
            "uncommitted or untracked files (`{file}`): commit them on {BRANCH} (`git add -f` \
             for new ones; build with O= outside the tree) or remove them"
        )),
        None => Ok(()),
    }
}

/// The first difference between `kernel-patch/` and what HEAD exports as
/// it is, if any.
fn difference(dir: &Path) -> Result<Option<String>> {
    let exported = Scratch::new("edit")?;
    export::format(dir, "HEAD", &series_dir(), &exported.0)?;
    export::first_difference(&series_dir(), &exported.0)
}

/// Resets the worktree to `base` and applies `kernel-patch/`; `old` is the
/// tip being replaced, kept as a backup and restored if `git am` fails.
fn apply(dir: &Path, old: Option<&str>) -> Result<()> {
    if let Some(old) = old {
        let backup = format!("refs/gmem-kmap/backup/{old}");
        git(dir, &["update-ref", &backup, old])?;
        eprintln!("    the old tip stays as {backup}");
        git(dir, &["reset", "--quiet", "--hard", BASE])?;
    }
    let patches = source::series_patches(&series_dir())?;
    eprintln!("    applying {} patch(es) on {BRANCH}", patches.len());
    let failed = source::am(dir, &patches).err();
    match (failed, old) {
        (None, _) => Ok(()),
        (Some(e), None) => Err(e),
        (Some(e), Some(old)) => match git(dir, &["reset", "--quiet", "--hard", old]) {
            Ok(_) => Err(e.context(format!("{BRANCH} is back at {old}"))),
            Err(r) => Err(e.context(format!("restoring {BRANCH} to {old} failed: {r:#}"))),
        },
    }
}

/// Puts the generated files as `src/` has them now into the branch.
fn refresh_generated(dir: &Path) -> Result<()> {
    let tip = rev(dir, "HEAD").context("no HEAD")?;
    let fresh = export::refresh(dir, &tip)?;
    if fresh != tip {
        eprintln!(
            "    generated files ({}) refreshed from src/",
            export::CRATE_DIR
        );
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

/// `kernel-patch/`'s files at the last sync.
fn recorded(dir: &Path) -> Option<String> {
    git(dir, &["notes", EXPORTED, "show", SYNCED]).ok()
}

/// `series export`: `kernel-patch/` from the branch.
fn export(dir: &Path, force: bool) -> Result<()> {
    let hint = "run `cargo xtask series edit` first";
    ensure!(
        dir.join(".git").exists(),
        "no edit worktree at {dir:?}: {hint}"
    );
    ready(dir)?;
    refresh_generated(dir)?;
    let (out, target) = (Scratch::new("export")?, series_dir());
    let files = export::format(dir, "HEAD", &target, &out.0)?;
    let first = export::first_difference(&target, &out.0)?;
    let moved = recorded(dir) != Some(series_id(dir, &patch_files(&target)?)?);
    ensure!(
        first.is_none() || !moved || force,
        "kernel-patch/ changed since {BRANCH} was last synced (a pull, or a hand edit), and the \
         branch does not hold that change: `cargo xtask series edit` takes it in if the branch \
         has no work of yours; `series export --force` overwrites it; nothing was changed"
    );
    for old in patch_files(&target)? {
        fs::remove_file(&old).with_context(|| format!("rm {old:?}"))?;
    }
    for file in &files {
        let name = file.file_name().context("a file")?;
        fs::copy(file, target.join(name)).with_context(|| format!("copy {name:?}"))?;
    }
    mark_synced(dir)?;
    let n = files.len();
    match first {
        None => eprintln!("    kernel-patch/ unchanged ({n} files)"),
        Some(first) => eprintln!("    wrote {n} files to kernel-patch/ (first change: {first})"),
    }
    Ok(())
}

/// `series export --check` on a tree whose HEAD is `dir`'s series applied
/// to `base`: exports it again and compares it with `dir` byte for byte.
pub fn check(tree: &Path, dir: &Path) -> Result<()> {
    let fresh = export::refresh(tree, "HEAD")?;
    let out = Scratch::new("check")?;
    let files = export::format(tree, &fresh, dir, &out.0)?;
    if let Some(first) = export::first_difference(dir, &out.0)? {
        bail!(
            "kernel-patch/ is not what its series exports: {first}. Edit the series with \
             `cargo xtask series edit`, then `cargo xtask series export`"
        );
    }
    let n = files.len();
    println!("    round trip: {n} files re-exported byte for byte (generated files included)");
    Ok(())
}

/// The commit `name` names, if any.
fn rev(dir: &Path, name: &str) -> Option<String> {
    git(
        dir,
        &["rev-parse", "-q", "--verify", &format!("{name}^{{commit}}")],
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_refuses_what_could_lose_work() {
        let scratch = Scratch::new("test-ready").unwrap();
        let dir = scratch.0.join("repo");
        fs::create_dir_all(dir.join("mm")).unwrap();
        let run = |args: &[&str]| git(&dir, args).unwrap();
        run(&["init", "-q", "-b", BRANCH]);
        // Debian's top-level .gitignore: every new file is "ignored".
        fs::write(dir.join(".gitignore"), "/*\n").unwrap();
        fs::write(dir.join("mm/a.c"), "int a;\n").unwrap();
        run(&["add", "-f", "."]);
        run(&["commit", "-q", "-m", "base"]);
        ready(&dir).unwrap();
        let refused = |why: &str| {
            let err = ready(&dir).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        };
        fs::write(dir.join("mm/new.c"), "int b;\n").unwrap();
        assert!(
            run(&["status", "--porcelain"]).is_empty(),
            "git status hides it"
        );
        refused("untracked files (`! mm/new.c`)");
        fs::remove_file(dir.join("mm/new.c")).unwrap();
        fs::write(dir.join("mm/a.c"), "int c;\n").unwrap();
        refused("uncommitted");
        run(&["checkout", "-q", "mm/a.c"]);
        run(&["checkout", "-q", "--detach"]);
        refused("HEAD is not branch");
        run(&["checkout", "-q", BRANCH]);
        fs::write(
            dir.join(run(&["rev-parse", "--git-path", "BISECT_LOG"])),
            "",
        )
        .unwrap();
        refused("in progress");
    }
}
