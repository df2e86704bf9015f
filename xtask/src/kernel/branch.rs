// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask series edit|export [--check]`: the kernel side is worked on
//! as commits on a branch, and `kernel-patch/` is exported from it, in the
//! manner of Debian's `gbp pq` and `b4 prep`.
//!
//! - The branch [`BRANCH`] lives in the cache's kernel repository, checked
//!   out in a worktree of its own (`<cache>/edit`, or
//!   `$GMEM_KMAP_EDIT_TREE`). The boot pipeline builds from the
//!   repository's main worktree (`<cache>/linux`) and never touches it.
//! - At each sync (xtask wrote the branch, or exported it), [`SYNCED`]
//!   records the branch's tip and [`EXPORTED`] a hash of `kernel-patch/`:
//!   a tip past the first holds work of yours, a `kernel-patch/` that no
//!   longer matches the second was changed under the branch (a pull, or a
//!   hand edit).
//! - Nothing here discards work. Both commands stop in a worktree that is
//!   not on the branch, is in the middle of a rebase, merge or `am`, or
//!   holds uncommitted or untracked files (Debian's top-level `.gitignore`
//!   hides every new file from `git status`; builds go to `O=`). `edit`
//!   stops when the branch holds commits that `kernel-patch/` lacks, and
//!   `export` when `kernel-patch/` changed under the branch (`--force`
//!   overrides); when `edit` replaces a branch, the old tip stays
//!   reachable as `refs/gmem-kmap/backup/<n>`.
//! - Progress goes to stderr, so that `cd "$(cargo xtask series edit)"`
//!   works.

use std::fs;
use std::path::{Path, PathBuf};

use super::export::{self, COVER_SOURCE};
use super::generated::{self, Scratch};
use super::run::output;
use super::source::{self, BASE, git};
use super::{Cache, series, series_dir};
use anyhow::{Context as _, Result, anyhow, bail};

/// The branch the series is edited on.
pub const BRANCH: &str = "gmem-kmap";
/// The branch's tip as xtask last left it.
const SYNCED: &str = "refs/gmem-kmap/synced";
/// A file in the edit worktree's git directory: the hash of `kernel-patch/`
/// at the last sync.
const EXPORTED: &str = "gmem-kmap-exported";

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
    match task {
        SeriesTask::Edit => edit(&cache).map(|dir| println!("{}", dir.display())),
        SeriesTask::Export {
            check: false,
            force,
        } => export(&cache, force),
        SeriesTask::Export { check: true, .. } => {
            let _lock = cache.lock()?;
            let tree = prepare(&cache)?;
            series::apply(&tree, &series_dir())?;
            check(&tree.dir, &series_dir())
        }
    }
}

/// The edit worktree's path, absolute.
pub fn edit_dir(cache: &Cache) -> PathBuf {
    let dir = crate::settings()
        .edit_tree
        .clone()
        .unwrap_or_else(|| cache.root.join("edit"));
    std::path::absolute(&dir).unwrap_or(dir)
}

/// The packages and the pristine tree. The caller holds the cache lock, or
/// the tree is there already.
fn prepare(cache: &Cache) -> Result<source::Tree> {
    if !super::packages::installed(source::PACKAGE) {
        super::packages::ensure()?;
    }
    source::prepare(cache)
}

/// `series edit`.
fn edit(cache: &Cache) -> Result<PathBuf> {
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
    let has_branch = rev(&repo, &format!("refs/heads/{BRANCH}")).is_some();
    if !dir.join(".git").exists() {
        output(git(&repo).args(["worktree", "prune"]))?;
        let mut add = git(&repo);
        add.args(["worktree", "add", "--quiet"]);
        if has_branch {
            eprintln!(
                "    checking out the existing branch {BRANCH} in {}",
                dir.display()
            );
            add.arg(&dir).arg(BRANCH);
        } else {
            add.args(["-b", BRANCH]).arg(&dir).arg(BASE);
        }
        output(&mut add)?;
    }
    ready(&dir)?;
    let tip = rev(&dir, "HEAD").context("the edit worktree has no HEAD")?;
    let base = rev(&dir, BASE).context("no `base` tag")?;
    let patches_now = patches_hash(&dir)?;
    let branch_untouched = tip == base || rev(&dir, SYNCED).is_some_and(|s| s == tip);
    // No record yet (a worktree older than the record): compare exports.
    let patches_untouched = match recorded(&dir) {
        Some(hash) => hash == patches_now,
        None => tip != base && difference(&dir, &tip)?.is_none(),
    };
    if tip == base {
        eprintln!("    {BRANCH} is empty: applying kernel-patch/");
        apply(&dir, None)?;
    } else if branch_untouched && patches_untouched {
        eprintln!("    {BRANCH} holds kernel-patch/ as it is");
    } else if branch_untouched {
        eprintln!("    kernel-patch/ changed since {BRANCH} was last synced: re-applying it");
        apply(&dir, Some(&tip))?;
    } else if let Some(diff) = difference(&dir, &tip)? {
        let count = output(git(&dir).args(["rev-list", "--count", &format!("{SYNCED}..HEAD")]))
            .unwrap_or_else(|_| "?".into());
        return Err(anyhow!(
            "{BRANCH} in {} holds {} commit(s) since xtask last wrote it, and kernel-patch/ \
             differs from what it exports ({diff}): run `cargo xtask series export` to take \
             them in (if kernel-patch/ changed too, rebase them onto it first); nothing \
             was changed",
            dir.display(),
            count.trim()
        ));
    } else {
        eprintln!("    {BRANCH} holds kernel-patch/ as it is");
    }
    refresh_generated(&dir)?;
    mark_synced(&dir)?;
    Ok(dir)
}

/// Refuses a worktree in which xtask could lose or misread work: not on
/// [`BRANCH`], in the middle of a git operation, or not clean.
fn ready(dir: &Path) -> Result<()> {
    let dir_git = |args: &[&str]| output(git(dir).args(args)).map(|s| s.trim().to_string());
    let stop = |why: String| Err(anyhow!("{}: {why}; nothing was changed", dir.display()));
    let head = dir_git(&["symbolic-ref", "-q", "HEAD"]).unwrap_or_default();
    if head != format!("refs/heads/{BRANCH}") {
        return stop(format!("HEAD is not branch {BRANCH} (it is `{head}`)"));
    }
    for op in [
        "rebase-merge",
        "rebase-apply",
        "MERGE_HEAD",
        "CHERRY_PICK_HEAD",
        "REVERT_HEAD",
        "BISECT_LOG",
    ] {
        let path = dir_git(&["rev-parse", "--path-format=absolute", "--git-path", op])?;
        if Path::new(&path).exists() {
            return stop(format!(
                "a git operation is in progress ({op}); finish or abort it"
            ));
        }
    }
    if !dir_git(&["status", "--porcelain"])?.is_empty() {
        return stop(format!(
            "uncommitted changes: commit them on {BRANCH} (then `cargo xtask series export`), \
             or stash them"
        ));
    }
    // Without exclude rules: the tree's top-level `.gitignore` hides all.
    let untracked = dir_git(&[
        "ls-files",
        "--others",
        "--directory",
        "--no-empty-directory",
    ])?;
    if let Some(first) = untracked.lines().next() {
        return stop(format!(
            "untracked file(s), e.g. {first}: `git add -f` and commit them, or remove them \
             (build with O= outside the tree)"
        ));
    }
    Ok(())
}

/// The first difference between `kernel-patch/` and what `tip` exports as
/// it is, if any.
fn difference(dir: &Path, tip: &str) -> Result<Option<String>> {
    let exported = Scratch::new("edit")?;
    export::format(
        dir,
        BASE,
        tip,
        &series_dir().join(COVER_SOURCE),
        &exported.0,
    )?;
    export::first_difference(&series_dir(), &exported.0)
}

/// Resets the worktree to `base` and applies `kernel-patch/`; `old` is the
/// tip being replaced, kept as a backup and restored if `git am` fails.
fn apply(dir: &Path, old: Option<&str>) -> Result<()> {
    if let Some(old) = old {
        eprintln!("    the old tip stays as {}", backup(dir, old)?);
        output(git(dir).args(["reset", "--quiet", "--hard", BASE]))?;
    }
    let patches = series::patches(&series_dir())?;
    eprintln!("    applying {} patch(es) on {BRANCH}", patches.len());
    let out = git(dir)
        .args([
            "am",
            "--quiet",
            "--3way",
            "--keep-cr",
            "--committer-date-is-author-date",
        ])
        .args(&patches)
        .output()
        .context("git am")?;
    if out.status.success() {
        return Ok(());
    }
    let _ = git(dir).args(["am", "--abort"]).output();
    let restored = old.map_or(String::new(), |old| {
        match output(git(dir).args(["reset", "--quiet", "--hard", old])) {
            Ok(_) => format!("; {BRANCH} is back at {old}"),
            Err(e) => format!("; restoring {old} failed too: {e:#}"),
        }
    });
    Err(anyhow!(
        "git am failed in {}{restored}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Puts the generated files as `src/` has them now into the branch.
fn refresh_generated(dir: &Path) -> Result<()> {
    let tip = rev(dir, "HEAD").context("no HEAD")?;
    let fresh = generated::refresh(dir, BASE, &tip)?;
    if fresh != tip {
        eprintln!(
            "    generated files ({}) refreshed from src/",
            generated::CRATE_DIR
        );
        output(git(dir).args(["reset", "--quiet", "--keep", &fresh]))?;
    }
    Ok(())
}

/// Records a sync: the branch's tip and `kernel-patch/` as they are now.
fn mark_synced(dir: &Path) -> Result<()> {
    output(git(dir).args(["update-ref", SYNCED, "HEAD"]))?;
    let hash = patches_hash(dir)?;
    fs::write(exported_path(dir)?, hash).with_context(|| format!("write {EXPORTED}"))
}

fn exported_path(dir: &Path) -> Result<PathBuf> {
    let path = output(git(dir).args([
        "rev-parse",
        "--path-format=absolute",
        "--git-path",
        EXPORTED,
    ]))?;
    Ok(PathBuf::from(path.trim()))
}

/// The hash `kernel-patch/` had at the last sync.
fn recorded(dir: &Path) -> Option<String> {
    fs::read_to_string(exported_path(dir).ok()?).ok()
}

/// A hash of every `.patch` file in `kernel-patch/`, the cover letter
/// included, names and bytes.
fn patches_hash(dir: &Path) -> Result<String> {
    series::series_hash(dir, &export::patch_files(&series_dir())?)
}

/// Keeps `tip` reachable under the next free `refs/gmem-kmap/backup/<n>`.
fn backup(dir: &Path, tip: &str) -> Result<String> {
    let name = (1..)
        .map(|n| format!("refs/gmem-kmap/backup/{n}"))
        .find(|r| rev(dir, r).is_none())
        .expect("some number is free");
    output(git(dir).args(["update-ref", &name, tip]))?;
    Ok(name)
}

/// `series export`: `kernel-patch/` from the branch.
fn export(cache: &Cache, force: bool) -> Result<()> {
    let dir = edit_dir(cache);
    if !dir.join(".git").exists() {
        bail!(
            "no edit worktree at {}: run `cargo xtask series edit` first",
            dir.display()
        );
    }
    ready(&dir)?;
    refresh_generated(&dir)?;
    let tip = rev(&dir, &format!("refs/heads/{BRANCH}")).context("no branch")?;
    let out = Scratch::new("export")?;
    let files = export::format(&dir, BASE, &tip, &series_dir().join(COVER_SOURCE), &out.0)?;
    let target = series_dir();
    let before = export::first_difference(&target, &out.0)?;
    let changed_under = recorded(&dir).is_none_or(|h| h != patches_hash(&dir).unwrap_or_default());
    if before.is_some() && changed_under && !force {
        return Err(anyhow!(
            "kernel-patch/ changed since {BRANCH} was last synced (a pull, or a hand edit), \
             and the branch does not hold that change: `cargo xtask series edit` takes it in \
             if the branch has no work of yours; `series export --force` overwrites it; \
             nothing was changed"
        ));
    }
    for old in export::patch_files(&target)? {
        fs::remove_file(&old).with_context(|| format!("rm {}", old.display()))?;
    }
    for file in &files {
        let name = file.file_name().unwrap_or_default();
        fs::copy(file, target.join(name)).with_context(|| format!("copy {name:?}"))?;
    }
    mark_synced(&dir)?;
    match before {
        None => eprintln!("    kernel-patch/ unchanged ({} files)", files.len()),
        Some(first) => eprintln!(
            "    wrote {} files to kernel-patch/ (first change: {first}); see `git diff kernel-patch/`",
            files.len()
        ),
    }
    Ok(())
}
/// `series export --check` on a tree whose HEAD is `dir`'s series applied
/// to `base`: exports it again and compares it with `dir` byte for byte.
pub fn check(tree: &Path, dir: &Path) -> Result<()> {
    let tip = rev(tree, "HEAD").context("no HEAD")?;
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
        Some(first) => Err(anyhow!(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_refuses_what_could_lose_work() {
        let scratch = Scratch::new("test-ready").unwrap();
        let dir = scratch.0.join("repo");
        fs::create_dir_all(dir.join("mm")).unwrap();
        let run = |args: &[&str]| output(git(&dir).args(args)).unwrap();
        run(&["init", "-q", "-b", BRANCH]);
        // Debian's top-level .gitignore: every new file is "ignored".
        fs::write(dir.join(".gitignore"), "/*\n").unwrap();
        fs::write(dir.join("mm/a.c"), "int a;\n").unwrap();
        run(&["add", "-f", "."]);
        run(&["commit", "-q", "-m", "base"]);
        ready(&dir).unwrap();

        fs::write(dir.join("mm/new.c"), "int b;\n").unwrap();
        assert!(
            run(&["status", "--porcelain"]).is_empty(),
            "git status hides it"
        );
        let err = ready(&dir).unwrap_err().to_string();
        assert!(
            err.contains("untracked") && err.contains("mm/new.c"),
            "{err}"
        );
        fs::remove_file(dir.join("mm/new.c")).unwrap();

        fs::write(dir.join("mm/a.c"), "int c;\n").unwrap();
        assert!(ready(&dir).unwrap_err().to_string().contains("uncommitted"));
        run(&["checkout", "-q", "mm/a.c"]);

        run(&["checkout", "-q", "--detach"]);
        assert!(
            ready(&dir)
                .unwrap_err()
                .to_string()
                .contains("HEAD is not branch")
        );
        run(&["checkout", "-q", BRANCH]);

        let rebase = output(git(&dir).args(["rev-parse", "--git-path", "rebase-merge"])).unwrap();
        fs::create_dir_all(dir.join(rebase.trim())).unwrap();
        assert!(ready(&dir).unwrap_err().to_string().contains("in progress"));
    }
}
