// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The kernel tree: Debian's `linux-source-6.12` unpacked into `<cache>/linux`,
//! tagged `base`, the series applied with `git am`, and [`checkpatch`] on it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Cache;
use super::run::output;
use anyhow::{Context as _, Result, ensure};

/// The Debian package the tree comes from.
pub const PACKAGE: &str = "linux-source-6.12";
/// The tag on the pristine commit.
pub const BASE: &str = "base";
/// The cover letter, which `git am` does not take.
pub const COVER: &str = "0000-cover-letter.patch";
/// The git notes ref that records which series HEAD holds.
const NOTES: &str = "--ref=gmem-kmap-series";
/// The crates `cargo vendor` copied: not kernel code, not checkpatch's.
const VENDORED: &str = "arch/x86/mm/gmem_kmap/vendor/";

/// The unpacked tree.
pub struct Tree {
    pub dir: PathBuf,
    /// The Debian package version, e.g. `6.12.117-1~deb12u1`.
    pub version: String,
}

/// The tree, when the cache holds the installed version already.
pub fn cached(cache: &Cache) -> Option<Tree> {
    let (version, dir) = (crate::prereq::version(PACKAGE)?, cache.linux());
    let stamp = fs::read_to_string(cache.root.join("linux.version")).ok()?;
    let tagged = run(&dir, &["rev-parse", "-q", "--verify", "refs/tags/base"]);
    (stamp == version && tagged.is_ok()).then_some(Tree { dir, version })
}

/// The installed package's tree, unpacked and committed unless cached, the build
/// directory emptied (old mtimes would hide stale objects). Locked.
pub fn prepare(cache: &Cache) -> Result<Tree> {
    if let Some(tree) = cached(cache) {
        println!("    cached: {PACKAGE} {} in {:?}", tree.version, tree.dir);
        return Ok(tree);
    }
    if !super::packages::installed(PACKAGE) {
        super::packages::ensure()?;
    }
    let version = crate::prereq::version(PACKAGE).with_context(|| format!("no {PACKAGE}"))?;
    let dir = cache.linux();
    // `series edit`'s work is never removed behind the user's back.
    let refs = ["for-each-ref", "refs/heads/gmem-kmap", "refs/gmem-kmap/"];
    let work = run(&dir, &refs).is_ok_and(|refs| !refs.is_empty());
    let worktrees = run(&dir, &["worktree", "list"]).map_or(0, |w| w.lines().count());
    ensure!(
        !work && worktrees < 2,
        "{dir:?} must be made again for {PACKAGE} {version}, but holds `series edit`'s work: \
         export it, then remove it and the worktree by hand"
    );
    let (stamp, build) = (cache.root.join("linux.version"), cache.root.join("build"));
    println!("    removing {dir:?}, {build:?} and {stamp:?}");
    output(Command::new("rm").arg("-rf").args([&dir, &build, &stamp]))?;
    let init = ["init", "-q", "-b", "main", &dir.display().to_string()];
    run(&cache.root, &init)?;
    let tarball = format!("/usr/src/{PACKAGE}.tar.xz");
    println!("    unpacking {tarball} ({PACKAGE} {version})");
    let tar = ["-xf", &tarball, "--strip-components=1", "-C"];
    output(Command::new("tar").args(tar).arg(&dir))?;
    println!("    committing it as tag `{BASE}` (git add of ~90k files, about half a minute)");
    // Debian's top-level .gitignore ends with `/*`: without -f nothing is added.
    run(&dir, &["add", "-A", "-f"])?;
    let message = format!("{PACKAGE} {version}");
    run(&dir, &["commit", "-q", "--no-verify", "-m", &message])?;
    run(&dir, &["tag", BASE])?;
    fs::write(&stamp, &version)?;
    Ok(Tree { dir, version })
}

/// Applies the series in `dir` unless HEAD is it already (then mtimes stay: no rebuild).
pub fn apply(tree: &Tree, dir: &Path) -> Result<()> {
    let patches = series_patches(dir)?;
    let id = series_id(&tree.dir, &patches)?;
    println!("    {} patch(es) in {}", patches.len(), dir.display());
    let git = |args: &[&str]| run(&tree.dir, args);
    if git(&["notes", NOTES, "show", "HEAD"]).is_ok_and(|n| n == id)
        && git(&["status", "--porcelain"]).is_ok_and(|s| s.is_empty())
    {
        println!("    unchanged: HEAD already is this series on `{BASE}`; tree left as it is");
        return Ok(());
    }
    println!("    resetting the tree to `{BASE}` and applying");
    git(&["checkout", "-q", "-f", BASE])?;
    git(&["clean", "-fdxq"])?;
    am(&tree.dir, &patches).with_context(|| {
        let made_for = base_version(dir).unwrap_or("no `6.12.N` named".into());
        let on = &tree.version;
        format!("the series ({made_for} in its cover letter) on {PACKAGE} {on}")
    })?;
    git(&["notes", NOTES, "add", "-f", "-m", &id, "HEAD"])?;
    let head = git(&["log", "-1", "--format=%h %s"])?;
    println!("    applied: HEAD {head}");
    Ok(())
}

/// `git am` of `patches` in `dir`, aborted (HEAD back) when one does not apply.
pub fn am(dir: &Path, patches: &[PathBuf]) -> Result<()> {
    let mut am = git(dir);
    am.args(["am", "--quiet", "--3way", "--keep-cr"]);
    let applied = output(am.arg("--committer-date-is-author-date").args(patches));
    if applied.is_err() {
        let _ = run(dir, &["am", "--abort"]);
    }
    applied.map(drop)
}

/// The `.patch` files in `dir`, sorted (the cover letter first).
pub fn patch_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).with_context(|| format!("read {dir:?}"))?;
    let paths: Result<Vec<_>, _> = entries.map(|e| e.map(|e| e.path())).collect();
    let mut files = paths?;
    files.retain(|p| p.extension().is_some_and(|e| e == "patch"));
    files.sort();
    Ok(files)
}

/// The patches `git am` takes: all but the cover letter.
pub fn series_patches(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut patches = patch_files(dir)?;
    patches.retain(|p| !p.ends_with(COVER));
    Ok(patches)
}

/// The series' identity: its files' names and blob ids (`git hash-object`).
pub fn series_id(repo: &Path, files: &[PathBuf]) -> Result<String> {
    let names: Vec<_> = files.iter().filter_map(|f| f.file_name()).collect();
    let ids = output(git(repo).arg("hash-object").args(files))?;
    Ok(format!("{names:?}\n{ids}").trim_end().to_string())
}

/// The version the series in `dir` was made for: its cover letter's first `6.12.N...` word.
pub fn base_version(dir: &Path) -> Option<String> {
    let cover = fs::read_to_string(dir.join(COVER)).ok()?;
    let mut words = cover.split(|c: char| c.is_whitespace() || "(),".contains(c));
    let version = |w: &&str| {
        let minor = w.strip_prefix("6.12.");
        minor.is_some_and(|n| n.starts_with(char::is_numeric))
    };
    let word = words.find(version)?;
    Some(word.trim_end_matches(['.', ':', ';']).into())
}

/// `git` in `dir` with a fixed identity and dates, no configuration, hooks
/// or inherited `GIT_*` variable: what xtask commits is the same for anyone.
pub fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    for (name, _) in std::env::vars_os().filter(|(n, _)| n.to_string_lossy().starts_with("GIT_")) {
        cmd.env_remove(name);
    }
    let date = "2000-01-01T00:00:00Z";
    cmd.current_dir(dir).env("LC_ALL", "C");
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1");
    cmd.envs([("GIT_AUTHOR_DATE", date), ("GIT_COMMITTER_DATE", date)]);
    cmd.args(["-c", "user.name=gmem-kmap xtask"]);
    cmd.args(["-c", "user.email=xtask@gmem-kmap.invalid"]);
    cmd.args(["-c", "core.hooksPath=/dev/null", "-c", "gc.auto=0"]);
    cmd
}

/// `git args` in `dir`: its stdout, trimmed.
pub fn run(dir: &Path, args: &[&str]) -> Result<String> {
    Ok(output(git(dir).args(args))?.trim().to_string())
}

/// `scripts/checkpatch.pl --strict` on the series in `dir` in one run, the diffs
/// under [`VENDORED`] left out; any report fails.
pub fn checkpatch(tree: &Tree, dir: &Path) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let mut cmd = Command::new("perl");
    cmd.arg("scripts/checkpatch.pl").current_dir(&tree.dir);
    cmd.args(["--strict", "--terse", "--summary-file", "--show-types"]);
    // Debian's python3 (spdxcheck.py imports `ply` and `git`) before any venv's.
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("/usr/bin:/bin:{path}"));
    let patches = series_patches(dir)?;
    for patch in &patches {
        let name = patch.file_name().context("a patch")?;
        let text = without_vendored(&fs::read_to_string(patch)?);
        fs::write(scratch.path().join(name), text)?;
        cmd.arg(scratch.path().join(name));
    }
    let out = cmd.output().context("cannot run scripts/checkpatch.pl")?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    verdict(out.status.success(), &text(&out.stdout), &text(&out.stderr))?;
    let n = patches.len();
    println!("    {n} patch(es): no errors, warnings or checks");
    Ok(())
}

/// Fails on any report (a summary line for each patch with one), on errors
/// of checkpatch's own (a Python traceback: a check not run), on a failure.
fn verdict(ok: bool, out: &str, err: &str) -> Result<()> {
    for line in out.lines().chain(err.lines()) {
        println!("      {line}");
    }
    let reports: Vec<&str> = out.lines().filter(|l| l.contains(" total: ")).collect();
    let (reports, own) = (reports.join("; "), "checkpatch printed errors of its own");
    ensure!(reports.is_empty(), "checkpatch --strict: {reports}");
    ensure!(err.trim().is_empty(), "checkpatch --strict: {own}");
    ensure!(ok, "checkpatch --strict: checkpatch failed");
    Ok(())
}

/// The patch without the diffs under [`VENDORED`].
fn without_vendored(patch: &str) -> String {
    let (mut kept, mut skipping) = (String::new(), false);
    for line in patch.split_inclusive('\n') {
        if let Some(paths) = line.strip_prefix("diff --git a/") {
            skipping = paths.starts_with(VENDORED);
        } else if line == "-- \n" || line.starts_with("From ") {
            skipping = false; // the signature or the next message
        }
        if !skipping {
            kept.push_str(line);
        }
    }
    kept
}

#[test]
fn the_base_version_and_checkpatch_s_verdict() {
    let scratch = tempfile::tempdir().unwrap();
    let cover = "Subject: [PATCH 0/2] x\n\nMade on linux-source-6.12 6.12.117-1~deb12u1.\n";
    fs::write(scratch.path().join(COVER), cover).unwrap();
    assert_eq!(base_version(scratch.path()).unwrap(), "6.12.117-1~deb12u1");
    fs::write(scratch.path().join(COVER), "Linux 6.12 only").unwrap();
    assert_eq!(base_version(scratch.path()), None);

    let kept = without_vendored(include_str!("vendored.patch"));
    assert!(kept.contains("+int a;") && kept.contains("+//! y") && !kept.contains("fn x()"));
    assert!(verdict(true, "", "").is_ok());
    let summary = "/t/0001-x.patch total: 0 errors, 0 warnings, 1 checks, 9 lines checked";
    let found = format!("/t/0001-x.patch:12: CHECK:BLANK: Please use a blank line\n{summary}");
    let err = verdict(false, &found, "").unwrap_err().to_string();
    assert!(err.contains(summary), "{err}");
    let traceback = verdict(true, "", "Traceback (most recent call last):\n");
    assert!(traceback.unwrap_err().to_string().contains("its own"));
    assert!(verdict(false, "", "").is_err());
}
