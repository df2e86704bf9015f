// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask boot-test`: Linux 6.12 built with `kernel-patch/`, booted
//! under QEMU, each boot's log judged; the stages and their needs are in
//! [`stage`]. `cargo xtask bench` builds the same way ([`build()`]). The
//! cache root (`--cache`) holds `linux/` (the tree: tag `base` and the
//! series), `build/<config>/` (O=), `ccache/`, `logs/`, and `lock`.

mod boots;
mod branch;
mod build;
mod config;
mod export;
mod initramfs;
mod ktap;
mod packages;
mod qemu;
pub(crate) mod run;
mod selftests;
mod source;
mod stage;
mod toolchain;

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};

use crate::report::Report;
pub use boots::{boot_script, script_log};
pub use branch::{SeriesTask, run as series};
pub use initramfs::Initramfs;
pub use ktap::check_paging;
pub use qemu::{Extra, Paging};
use stage::{Kernel, Pipeline, Stage};

/// The suites every boot log must show, all passing, none skipped (unless
/// `--expected-suites` says otherwise).
pub const EXPECTED_SUITES: &[&str] = &[
    "gmem_kmap",
    "gmem_kmap_private",
    "kvm_gmem_no_direct_map",
    "selftest guest_memfd_no_direct_map_test",
    "selftest guest_memfd_no_direct_map_input_test",
    "selftest guest_memfd_no_direct_map_stress_test",
];

/// The series' C source, and the objects built again with mitigations off.
const SERIES_C: &str = "arch/x86/mm/gmem_kmap.c";
const NOMITIG_OBJECTS: &[&str] = &["arch/x86/mm/gmem_kmap.o", "arch/x86/mm/gmem_kmap_core.o"];

/// Where everything is kept between runs.
pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    pub fn from_env() -> Self {
        let root = crate::settings().cache.clone();
        Cache { root }
    }

    pub fn linux(&self) -> PathBuf {
        self.root.join("linux")
    }

    /// The build directory (`O=`) of configuration `name`.
    pub fn build(&self, name: &str) -> PathBuf {
        self.root.join("build").join(name)
    }

    /// `<root>/lock`, held until dropped: one boot test or bench at a time.
    pub fn lock(&self) -> Result<File> {
        let path = self.root.join("lock");
        std::fs::create_dir_all(&self.root)?;
        let file = File::create(&path).with_context(|| format!("open {}", path.display()))?;
        match file.try_lock() {
            Err(TryLockError::WouldBlock) => {
                println!("    waiting for another run using {}", self.root.display());
                file.lock()?
            }
            locked => locked?,
        }
        Ok(file)
    }

    /// `logs/<name>.log`, its directory created.
    pub fn log(&self, name: &str) -> PathBuf {
        let dir = self.root.join("logs");
        let _ = std::fs::create_dir_all(&dir);
        dir.join(format!("{name}.log"))
    }
}

/// `cargo xtask boot-test`'s options.
#[derive(clap::Parser, Debug)]
pub struct Options {
    /// CPUs of the test boots (`-smp`); the race stress boots have 8.
    #[arg(long, default_value_t = 2)]
    pub smp: u32,
    /// The paging depths booted, each a boot of its own: 4 (`no5lvl`),
    /// 5 (LA57, which `-cpu max` offers under TCG) or both, 5-level first.
    #[arg(long, default_value = "both", value_parser = depths())]
    pub paging: &'static [Paging],
    /// A file for the guest's initramfs; `/tests/foo=./foo` runs ./foo in
    /// the guest, whose non-zero exit fails the boot. Repeatable.
    #[arg(long = "add", value_name = "GUEST_PATH=HOST_FILE", value_parser = guest_file)]
    pub extra: Vec<(String, PathBuf)>,
}

/// `--paging`'s values, each as the depths booted in order.
fn depths() -> impl TypedValueParser<Value = &'static [Paging]> {
    let values = PossibleValuesParser::new(["4", "5", "both"]);
    values.map(|v| match v.as_str() {
        "4" => &[Paging::Four][..],
        "5" => &[Paging::Five],
        _ => &[Paging::Five, Paging::Four],
    })
}

fn guest_file(v: &str) -> Result<(String, PathBuf)> {
    let (guest, host) = v.split_once('=').context("want GUEST_PATH=HOST_FILE")?;
    Ok((guest.into(), host.into()))
}

/// `kernel-patch/`, or `--series-dir`.
pub fn series_dir() -> PathBuf {
    let dir = crate::settings().series_dir.clone();
    dir.unwrap_or_else(|| crate::root().join("kernel-patch"))
}

/// What the build stages made, for booting.
pub struct Built {
    /// `arch/x86/boot/bzImage` of the `boot` configuration.
    pub kernel: PathBuf,
    /// The series' programs as (guest path, host file): `/tests/*`, which
    /// `/init` runs, and tools under `/bin`.
    pub programs: Vec<(String, PathBuf)>,
    tree: source::Tree,
    _lock: File,
}

/// The stages up to a kernel and its programs; `None` when one failed
/// (already reported). `style` adds the checks that never stop a boot.
pub fn build(report: &mut Report, cache: &Cache, style: bool) -> Option<Built> {
    let mut p = Pipeline::new(report);
    let (lock, tree) = tree_stages(&mut p, cache).unzip();
    let (kernel, programs) = build_stages(&mut p, cache, style, tree.as_ref());
    Some(Built {
        kernel: kernel?,
        programs: programs?,
        tree: tree?,
        _lock: lock?,
    })
}

/// The packages, and the tree unpacked with the cache locked.
fn tree_stages(p: &mut Pipeline, cache: &Cache) -> Option<(File, source::Tree)> {
    p.run(Stage::Packages, packages::ensure);
    p.run(Stage::Tree, || Ok((cache.lock()?, source::prepare(cache)?)))
}

/// The series applied to `tree`, the tested kernel and its programs built.
fn build_stages(
    p: &mut Pipeline,
    cache: &Cache,
    style: bool,
    tree: Option<&source::Tree>,
) -> (Option<PathBuf>, Option<Vec<(String, PathBuf)>>) {
    let path = tree.map(|t| t.dir.as_path());
    let (tree, series) = (|| tree.expect("the tree stage passed"), series_dir());
    let dir = || path.expect("the tree stage passed");
    p.run(Stage::Series, || source::apply(tree(), &series));
    if style {
        // What was applied, exported again, must be kernel-patch/.
        p.run(Stage::RoundTrip, || branch::check(dir(), &series));
        p.run(Stage::Checkpatch, || source::checkpatch(tree(), &series));
    }
    let kernel = build_kernel(p, cache, Kernel::Boot, path);
    if style {
        let rejects_panics = || toolchain::check_rejects_panics(cache, dir());
        p.run(Stage::PanicProbe, rejects_panics);
        let hidden = || toolchain::hidden_without_target(cache, dir());
        p.run(Stage::NoTarget, hidden);
    }
    let selftests = || selftests::build(dir(), &cache.build("boot"));
    (kernel, p.run(Stage::Selftests, selftests))
}

/// Kernel `k` configured and built in `dir` (the tested one with the uapi
/// headers the selftests need): its bzImage.
fn build_kernel(p: &mut Pipeline, cache: &Cache, k: Kernel, dir: Option<&Path>) -> Option<PathBuf> {
    let tree = || dir.expect("the series applied");
    let configure = || config::configure(cache, tree(), k.name());
    p.run(Stage::Configure(k), configure);
    let targets: &[&str] = match k {
        Kernel::Boot => &["bzImage", "headers"],
        Kernel::Debug => &["bzImage"],
    };
    let make = || bzimage(&build::make(cache, tree(), k.name(), targets)?);
    p.run(Stage::Build(k), make)
}

/// `bzImage` of configuration `name`: the `boot` fragment with the symbols
/// in `unset` (without `CONFIG_`) off, from the tree `built` was made from:
/// a kernel that differs from the tested one only where a measurement needs it.
pub fn build_variant(cache: &Cache, built: &Built, name: &str, unset: &[&str]) -> Result<PathBuf> {
    let tree = &built.tree.dir;
    let off = cache.root.join(format!("{name}-unset.config"));
    let lines = unset.iter().map(|s| format!("# CONFIG_{s} is not set\n"));
    let text: String = lines.collect();
    std::fs::write(&off, text).with_context(|| format!("write {}", off.display()))?;
    config::layered(cache, tree, name, &[config::fragment("boot"), off])?;
    bzimage(&build::make(cache, tree, name, &["bzImage"])?)
}

/// The kernel stages: the packages and the tree, then `host_tests` (which
/// read the tree's kunit.py), then, given `opts`, the build and the boots.
pub fn test(report: &mut Report, opts: Option<&Options>, host_tests: impl FnOnce(&mut Report)) {
    let cache = Cache::from_env();
    let mut p = Pipeline::new(report);
    let (_lock, tree) = tree_stages(&mut p, &cache).unzip();
    host_tests(p.report);
    let Some(opts) = opts else { return };
    let (kernel, programs) = build_stages(&mut p, &cache, true, tree.as_ref());
    let programs = programs.unwrap_or_default();
    let mut boots = boots::Boots {
        cache: &cache,
        kernel: Kernel::Boot,
        image: kernel.as_deref(),
        programs: &programs,
        opts,
    };
    boots.run(&mut p);
    let dir = tree.as_ref().map(|t| t.dir.as_path());
    let debug = build_kernel(&mut p, &cache, Kernel::Debug, dir);
    (boots.kernel, boots.image) = (Kernel::Debug, debug.as_deref());
    boots.run(&mut p);
    if p.ready(Stage::Nomitig) {
        let dir = dir.expect("the series applied");
        p.report.run(&Stage::Nomitig.name(), || {
            if !dir.join(SERIES_C).exists() {
                return Ok(Some(format!("skipped: series has no {SERIES_C} yet")));
            }
            config::configure(&cache, dir, "nomitig")?;
            build::make(&cache, dir, "nomitig", NOMITIG_OBJECTS)?;
            Ok(None)
        });
    }
}

/// The bzImage a build in `out` made, its size printed.
fn bzimage(out: &Path) -> Result<PathBuf> {
    let kernel = out.join("arch/x86/boot/bzImage");
    let meta = std::fs::metadata(&kernel).context("the build made no bzImage")?;
    println!("    {} ({} KiB)", kernel.display(), meta.len() / 1024);
    Ok(kernel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &str) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("boot-test").chain(args.split_whitespace()))
    }

    #[test]
    fn boots_both_depths_unless_told_otherwise() {
        let o = parse("--smp 4").unwrap();
        assert_eq!(o.smp, 4);
        assert_eq!(o.paging, [Paging::Five, Paging::Four]);
        assert_eq!(parse("--paging 4").unwrap().paging, [Paging::Four]);
        assert_eq!(parse("--paging 5").unwrap().paging, [Paging::Five]);
        for bad in ["--paging 3", "--paging", "--add /tests/a"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let o = parse("--add /tests/a=./a --add /bin/b=/b").unwrap();
        assert_eq!(o.extra[1], ("/bin/b".into(), PathBuf::from("/b")));
    }
}
