// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The initramfs, archived by the tree's `usr/gen_init_cpio` (any mode, owner or node, no root).

use super::Cache;
use super::run::output;
use anyhow::{Context as _, Result, ensure};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `/init` prints once it runs, before and after each test, at the end.
pub const STARTED: &str = "gmem-kmap: init started";
pub const RUNNING: &str = "gmem-kmap: running ";
pub const TEST_EXIT: &str = "gmem-kmap: test ";
pub const DONE: &str = "gmem-kmap: init done";

/// `/init`: runs every executable in `/tests/`, printing the markers above.
const INIT: &str = include_str!("init.sh");

/// An archive being assembled, by path: sorted, a directory before its contents.
#[derive(Default)]
pub struct Initramfs {
    entries: BTreeMap<String, Entry>,
}

enum Entry {
    /// A gen_init_cpio type and what follows the name: (`dir`, `0755 0 0`).
    Line(&'static str, String),
    /// A file's mode and contents, written beside the archive first.
    Data(u32, Vec<u8>),
}

fn dir() -> Entry {
    Entry::Line("dir", "0755 0 0".into())
}

impl Initramfs {
    /// `busybox` (`/bin/busybox`: Debian's busybox-static), `/init` and their directories.
    pub fn new(busybox: &Path) -> Result<Self> {
        let mut a = Initramfs::default();
        for d in ["bin", "dev", "proc", "sys", "tmp", "root", "tests"] {
            a.push(d, dir());
        }
        a.push("dev/console", Entry::Line("nod", "0600 0 0 c 5 1".into()));
        a.host_file("bin/busybox", busybox)?;
        a.push("bin/sh", Entry::Line("slink", "busybox 0777 0 0".into()));
        a.file("init", INIT.as_bytes().to_vec(), 0o755);
        Ok(a)
    }

    /// Adds a regular file with `mode` (e.g. `0o755`).
    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) -> &mut Self {
        self.push(path, Entry::Data(mode & 0o7777, data))
    }

    /// Adds a host file, keeping its permission bits; it must exist now.
    pub fn host_file(&mut self, path: &str, host: &Path) -> Result<&mut Self> {
        let meta = fs::metadata(host).with_context(|| format!("read {}", host.display()))?;
        ensure!(meta.is_file(), "{} is not a regular file", host.display());
        let mode = meta.permissions().mode() & 0o7777;
        let from = word(&host.display().to_string())?.to_string();
        Ok(self.push(path, Entry::Line("file", format!("{from} {mode:04o} 0 0"))))
    }

    /// Adds or replaces the entry at `path`, and any missing parents.
    fn push(&mut self, path: &str, entry: Entry) -> &mut Self {
        let path = path.trim_start_matches('/');
        for (i, _) in path.match_indices('/') {
            self.entries.entry(path[..i].into()).or_insert_with(dir);
        }
        self.entries.insert(path.into(), entry);
        self
    }

    /// Writes the archive to `path` (`*.gz`), with `<path>.list` and `<path>.d/`
    /// beside it, by the tested tree's `usr/gen_init_cpio`; its size.
    pub fn write_gz(&self, path: &Path) -> Result<u64> {
        let tool = Cache::from_env().build("boot").join("usr/gen_init_cpio");
        self.archive(&tool, path)
    }

    /// [`Self::write_gz`] with the gen_init_cpio at `tool`.
    fn archive(&self, tool: &Path, path: &Path) -> Result<u64> {
        let beside = |suffix: &str| PathBuf::from(format!("{}{suffix}", path.display()));
        let (list_path, staged) = (beside(".list"), beside(".d"));
        let _ = fs::remove_dir_all(&staged);
        let mut list = String::from("# gmem-kmap test initramfs, for usr/gen_init_cpio\n");
        for (path, entry) in &self.entries {
            let name = word(path)?;
            list += &match entry {
                Entry::Line(kind, rest) => format!("{kind} /{name} {rest}\n"),
                Entry::Data(mode, data) => {
                    let to = staged.join(path);
                    fs::create_dir_all(to.parent().expect("under staged"))?;
                    fs::write(&to, data).with_context(|| format!("write {}", to.display()))?;
                    let from = word(&to.display().to_string())?.to_string();
                    format!("file /{name} {from} {mode:04o} 0 0\n")
                }
            };
        }
        fs::write(&list_path, list).with_context(|| format!("write {}", list_path.display()))?;
        let cpio = path.with_extension("");
        let out = fs::File::create(&cpio).with_context(|| format!("create {}", cpio.display()))?;
        // -t 0: every mtime 0, so that the same inputs make the same archive.
        let mut make = Command::new(tool);
        make.args(["-t", "0"]).arg(&list_path).stdout(out);
        let made = make.status();
        let made = made.with_context(|| format!("cannot run {tool:?}: the boot build makes it"))?;
        let shown = list_path.display();
        ensure!(made.success(), "gen_init_cpio failed on {shown}");
        output(Command::new("gzip").args(["-9", "-n", "-f"]).arg(&cpio))?;
        Ok(fs::metadata(path)?.len())
    }
}

/// `s`, if gen_init_cpio (which splits at whitespace, expands `${}`) takes it.
fn word(s: &str) -> Result<&str> {
    let one = !s.contains(char::is_whitespace) && !s.contains("${");
    let why = "gen_init_cpio cannot take whitespace or ${ in a name";
    ensure!(one, "{s:?}: {why}");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the gen_init_cpio of the tree `cargo xtask boot-test` prepared.
    #[test]
    fn gen_init_cpio_makes_the_archive() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let src = Cache::from_env().linux().join("usr/gen_init_cpio.c");
        let tool = dir.join("gen_init_cpio");
        output(Command::new("cc").arg("-o").arg(&tool).arg(&src)).unwrap();
        let host = dir.join("host");
        fs::write(&host, "host").unwrap();
        fs::set_permissions(&host, fs::Permissions::from_mode(0o640)).unwrap();
        let mut a = Initramfs::new(&host).unwrap();
        a.host_file("/tests/host", &host).unwrap();
        a.file("/tests/sub/t", b"old".to_vec(), 0o644);
        a.file("tests/sub/t", b"abc".to_vec(), 0o4755);
        let gz = dir.join("a.cpio.gz");
        let size = a.archive(&tool, &gz).unwrap();
        assert_eq!(size, fs::metadata(&gz).unwrap().len());
        output(Command::new("gzip").arg("-dkf").arg(&gz)).unwrap();
        let mut cpio = Command::new("cpio");
        cpio.arg("-itvnF").arg(dir.join("a.cpio")).env("TZ", "UTC");
        let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        let listed: Vec<String> = output(&mut cpio).unwrap().lines().map(words).collect();
        let markers = [STARTED, RUNNING, TEST_EXIT, DONE];
        assert!(markers.iter().all(|m| INIT.contains(m)));
        // In order: a directory before its contents, a path replaced once.
        let want = include_str!("initramfs.listing").trim_end();
        assert_eq!(listed.join("\n"), want);
        // Names gen_init_cpio would misread, and host files missing, are refused.
        for bad in ["/nonexistent/x", "/tmp"] {
            assert!(a.host_file("/tests/x", Path::new(bad)).is_err(), "{bad}");
        }
        fs::remove_file(&host).unwrap();
        let gone = a.archive(&tool, &gz).unwrap_err().to_string();
        assert!(gone.contains("gen_init_cpio failed"), "{gone}");
        a.file("tests/a b", Vec::new(), 0o755);
        let spaced = a.archive(&tool, &gz).unwrap_err().to_string();
        assert!(spaced.contains("cannot take whitespace"), "{spaced}");
    }
}
