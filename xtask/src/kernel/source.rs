// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The kernel tree: Debian's `linux-source-6.12` unpacked once into
//! `<cache>/linux`, committed with the tag `base`, and the series applied
//! with `git am`; an unchanged series on a clean tree is left alone, so
//! mtimes stay and a rebuild does nothing.

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

/// The installed version of [`PACKAGE`].
fn installed() -> Result<String> {
    output(Command::new("dpkg-query").args(["-W", "-f=${Version}", PACKAGE]))
}

/// The tree, when the cache holds the installed version already.
pub fn cached(cache: &Cache) -> Option<Tree> {
    let (version, dir) = (installed().ok()?, cache.linux());
    let stamp = fs::read_to_string(cache.root.join("linux.version")).ok()?;
    let tagged = run(&dir, &["rev-parse", "-q", "--verify", "refs/tags/base"]);
    (stamp == version && tagged.is_ok()).then_some(Tree { dir, version })
}

/// Unpacks and commits the tree (the package installed first) unless the
/// cache holds this version; a new one also empties the build directories
/// (the tarball's old mtimes would look older than stale objects). The
/// caller holds the cache lock.
pub fn prepare(cache: &Cache) -> Result<Tree> {
    if let Some(tree) = cached(cache) {
        let (version, dir) = (&tree.version, tree.dir.display());
        println!("    cached: {PACKAGE} {version} in {dir}");
        return Ok(tree);
    }
    if !super::packages::installed(PACKAGE) {
        super::packages::ensure()?;
    }
    let (version, dir) = (installed()?, cache.linux());
    let stamp = cache.root.join("linux.version");
    // The repository also holds `series edit`'s work: never removed behind
    // the user's back.
    let refs = ["for-each-ref", "refs/heads/gmem-kmap", "refs/gmem-kmap/"];
    let refs = run(&dir, &refs);
    let worktrees = run(&dir, &["worktree", "list"]).map(|w| w.lines().count());
    if dir.exists() && (refs.is_ok_and(|r| !r.is_empty()) || worktrees.is_ok_and(|n| n > 1)) {
        bail!(
            "{dir:?} must be made again for {PACKAGE} {version}, but holds `series edit`'s work: \
             export it, then remove it and the worktree by hand"
        );
    }
    let _ = fs::remove_file(&stamp);
    for stale in [&dir, &cache.root.join("build")] {
        if stale.exists() {
            println!("    removing {stale:?}");
            fs::remove_dir_all(stale).with_context(|| format!("rm {stale:?}"))?;
        }
    }
    fs::create_dir_all(&dir)?;
    let tarball = format!("/usr/src/{PACKAGE}.tar.xz");
    println!("    unpacking {tarball} ({PACKAGE} {version})");
    let tar = ["-xf", &tarball, "--strip-components=1", "-C"];
    output(Command::new("tar").args(tar).arg(&dir))?;
    println!("    committing it as tag `{BASE}` (git add of ~90k files, about half a minute)");
    run(&dir, &["init", "-q", "-b", "main"])?;
    // Debian's top-level .gitignore ends with `/*`: without -f nothing is added.
    run(&dir, &["add", "-A", "-f"])?;
    let message = format!("{PACKAGE} {version}");
    run(&dir, &["commit", "-q", "--no-verify", "-m", &message])?;
    run(&dir, &["tag", BASE])?;
    fs::write(&stamp, &version)?;
    Ok(Tree { dir, version })
}

/// Applies the series in `dir` to the tree unless HEAD already is it.
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
        let made_for = base_version(dir);
        let made_for = made_for.as_deref().unwrap_or("no `6.12.N` named");
        let on = &tree.version;
        format!("the series ({made_for} in its cover letter) on {PACKAGE} {on}")
    })?;
    git(&["notes", NOTES, "add", "-f", "-m", &id, "HEAD"])?;
    let head = git(&["log", "-1", "--format=%h %s"])?;
    println!("    applied: HEAD {head}");
    Ok(())
}

/// `git am` of `patches` in `dir`, aborted (HEAD back where it was) when
/// one does not apply.
pub fn am(dir: &Path, patches: &[PathBuf]) -> Result<()> {
    if patches.is_empty() {
        return Ok(());
    }
    let mut am = git(dir);
    am.args(["am", "--quiet", "--3way", "--keep-cr"]);
    let applied = output(am.arg("--committer-date-is-author-date").args(patches));
    if applied.is_err() {
        let _ = run(dir, &["am", "--abort"]);
    }
    applied.map(drop)
}

/// The `.patch` files in `dir`, sorted (the cover letter first), if any.
pub fn patch_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        entries => entries.with_context(|| format!("read {dir:?}"))?,
    };
    let mut files = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
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
    let ids = match files {
        [] => String::new(),
        _ => output(git(repo).arg("hash-object").args(files))?,
    };
    Ok(format!("{names:?}\n{ids}").trim_end().to_string())
}

/// The `linux-source-6.12` version the series in `dir` was made for, as its
/// cover letter names it.
pub fn base_version(dir: &Path) -> Option<String> {
    let cover = fs::read_to_string(dir.join(COVER)).ok()?;
    version_in(&cover).map(String::from)
}

/// The first `6.12.N...` word of `text` (a cover letter).
fn version_in(text: &str) -> Option<&str> {
    let mut words = text.split(|c: char| c.is_whitespace() || "(),".contains(c));
    let version = |w: &&str| {
        w.strip_prefix("6.12.")
            .is_some_and(|r| r.starts_with(char::is_numeric))
    };
    Some(words.find(version)?.trim_end_matches(['.', ':', ';']))
}

/// `git` in `dir` with a fixed identity and dates, no user or system
/// configuration, no hooks, no inherited `GIT_*` variable (from a hook or
/// `rebase -x`): what xtask commits and exports is the same for anyone.
pub fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    for (name, _) in std::env::vars_os().filter(|(n, _)| n.to_string_lossy().starts_with("GIT_")) {
        cmd.env_remove(name);
    }
    let date = "2000-01-01T00:00:00Z";
    cmd.current_dir(dir).env("LC_ALL", "C");
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1");
    cmd.env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date);
    cmd.args(["-c", "user.name=gmem-kmap xtask"]);
    cmd.args(["-c", "user.email=xtask@gmem-kmap.invalid"]);
    cmd.args(["-c", "core.hooksPath=/dev/null", "-c", "gc.auto=0"]);
    cmd
}

/// `git args` in `dir`: its stdout, trimmed.
pub fn run(dir: &Path, args: &[&str]) -> Result<String> {
    Ok(output(git(dir).args(args))?.trim().to_string())
}

#[test]
fn the_version_the_cover_letter_names() {
    let cover = "Subject: [PATCH 0/2] x\n\nMade on linux-source-6.12 6.12.117-1~deb12u1.\n";
    assert_eq!(version_in(cover), Some("6.12.117-1~deb12u1"));
    assert_eq!(version_in("Linux 6.12 only"), None);
}
