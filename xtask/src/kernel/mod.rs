// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask boot-test`: builds Linux 6.12 with the series in
//! `kernel-patch/` and boots it under QEMU, judging the KUnit results.
//! `cargo xtask bench` uses the same build ([`build()`]) and boots it with a
//! script of its own ([`boot_script`]).
//!
//! Stages, one file each:
//! 1. [`packages`]: the Debian packages (source tarball, QEMU, busybox, ...);
//! 2. [`source`]: the tarball unpacked once into `<cache>/linux`, tag `base`;
//! 3. [`series`]: `kernel-patch/*.patch` applied with `git am`, then
//!    [`checkpatch`]: each patch through `checkpatch.pl --strict`;
//! 4. [`config`]: `kernel-patch/configs/<name>.config` through allnoconfig;
//! 5. [`build`](mod@build): `make bzImage headers` through ccache, warnings scanned;
//! 6. [`selftests`]: the series' test and benchmark programs, built static
//!    with the KVM selftests' own Makefile;
//! 7. [`initramfs`]: busybox and an `/init` that runs `/tests/*` (the
//!    test programs among them; the benchmark program goes to `/bin`);
//! 8. [`qemu`]: two boots of the same kernel and initramfs, each with its
//!    own stage and log: at 5-level paging (LA57, which `-cpu max` offers
//!    under TCG; the kernel has `CONFIG_X86_5LEVEL=y`), console into
//!    `<cache>/logs/boot-5level.log`, then at 4-level (`no5lvl` on the
//!    command line) into `boot-4level.log`; `--paging 4|5` boots one only;
//! 9. [`ktap`]: each boot's verdict, over KUnit's KTAP and the selftests'
//!    TAP, and the paging depth the gmem_kmap suite reports
//!    (`# paging: 5-level`), which must be the one the boot asked for. The
//!    boots are independent: a failed 5-level boot still leaves the 4-level
//!    one to run and be judged;
//! 10. the race stress program alone on 8 CPUs;
//! 11. the debug kernel (`boot.config` + `debug.config`, [`config::layers`]):
//!     built, booted at each depth with the same tests, the fault-injection
//!     program and a kmemleak scan last, then the 8-CPU stress, then a boot
//!     with `debug_pagealloc=off` running the fault-injection program only
//!     (the direct map in huge pages, so that failures meet its splits);
//! 12. the series' objects built again with mitigations off (`nomitig`).
//!
//! Everything goes under the cache root, `$GMEM_KMAP_CACHE` or
//! `/var/cache/gmem-kmap`: `linux/` (the tree), `build/<config>/` (O=),
//! `ccache/`, `logs/` (`boot-config.log`, `boot-build.log`,
//! `boot-5level.log`, `boot-4level.log`, `nomitig-*.log`),
//! `initramfs.cpio.gz`, and `lock` (one boot test at a time per cache).
//!
//! Make is run in the tree as `make O=<cache>/build/<config> -j<nproc>
//! CC="ccache gcc" HOSTCC="ccache gcc" <targets>` with
//! `CCACHE_DIR=<cache>/ccache`; the series carries the Rust core with its
//! dependencies vendored ([`generated`]), so the tree builds on its own.
//!
//! `<cache>/linux` is the pipeline's tree: it is reset to `base` and the
//! series applied whenever `kernel-patch/` changes. Kernel work is done in
//! the worktree `cargo xtask series edit` makes ([`branch`]).
//!
//! Overrides, for trying the pipeline on other inputs:
//! - `GMEM_KMAP_CACHE`: the cache root;
//! - `GMEM_KMAP_SERIES_DIR`: patches from another directory;
//! - `GMEM_KMAP_BOOT_CONFIG`, `GMEM_KMAP_NOMITIG_CONFIG`: other fragments;
//! - `GMEM_KMAP_EXPECTED_SUITES`: comma-separated, instead of
//!   [`EXPECTED_SUITES`]; without `gmem_kmap` among them, a log that does
//!   not report its paging depth passes (a kernel without the series has
//!   nothing to report it), one that reports another depth still fails;
//! - `GMEM_KMAP_BOOT_TIMEOUT`: seconds before QEMU is killed (900).
//!
//! More files for the guest: `--add /tests/name=<host file>` on the command
//! line, or [`Initramfs::file`] / [`Initramfs::host_file`] in
//! [`make_initramfs`]; `/init` runs every executable in `/tests/` and a
//! non-zero exit fails the boot test.

mod branch;
mod build;
mod checkpatch;
mod config;
mod export;
mod generated;
mod initramfs;
mod ktap;
mod packages;
mod qemu;
mod run;
mod selftests;
mod series;
mod source;
mod toolchain;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::report::Report;
pub use branch::{USAGE as SERIES_USAGE, run as series};
pub use initramfs::Initramfs;
pub use qemu::{Extra, Paging};

/// The suites that must be in the boot log, all passing and none skipped:
/// KUnit's, and `selftest <program>` for each test of [`selftests::PROGRAMS`].
/// `GMEM_KMAP_EXPECTED_SUITES` (comma-separated) replaces the list, e.g.
/// `list-kunit-test` to try the pipeline on a kernel without the series.
pub const EXPECTED_SUITES: &[&str] = &[
    "gmem_kmap",
    "gmem_kmap_private",
    "kvm_gmem_no_direct_map",
    "selftest guest_memfd_no_direct_map_test",
    "selftest guest_memfd_no_direct_map_input_test",
    STRESS_SUITE,
];

/// The race stress program: at every boot with the other tests (2 CPUs),
/// and in a boot of its own on [`STRESS_SMP`] CPUs, for each kernel.
const STRESS_PROGRAM: &str = "guest_memfd_no_direct_map_stress_test";
/// Its suite in the verdict.
const STRESS_SUITE: &str = "selftest guest_memfd_no_direct_map_stress_test";
/// The CPUs of the stress boots (as many vCPUs race as there are CPUs).
const STRESS_SMP: u32 = 8;

/// The fault-injection program, which only the debug kernel can run, and
/// its suite.
const FAULT_PROGRAM: &str = "guest_memfd_no_direct_map_fault_test";
const FAULT_SUITE: &str = "selftest guest_memfd_no_direct_map_fault_test";
/// A boot of the debug kernel with its direct map in huge pages again, so
/// that the injected failures meet the direct map's splits as well.
const FAULT_CMDLINE: &str = "debug_pagealloc=off kunit.enable=0";

/// The suite that prints the paging depth (`# paging: 5-level`).
const PAGING_SUITE: &str = "gmem_kmap";

/// The series' C source; without it there is nothing to build with
/// mitigations off.
const SERIES_C: &str = "arch/x86/mm/gmem_kmap.c";
/// The objects the `nomitig` configuration builds (make targets).
const NOMITIG_OBJECTS: &[&str] = &["arch/x86/mm/gmem_kmap.o", "arch/x86/mm/gmem_kmap_core.o"];

/// Where everything is kept between runs.
pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    /// `$GMEM_KMAP_CACHE`, or `/var/cache/gmem-kmap`.
    pub fn from_env() -> Self {
        let root = std::env::var_os("GMEM_KMAP_CACHE")
            .map_or_else(|| PathBuf::from("/var/cache/gmem-kmap"), PathBuf::from);
        Cache { root }
    }

    /// The kernel tree.
    pub fn linux(&self) -> PathBuf {
        self.root.join("linux")
    }

    /// The build directory (`O=`) of configuration `name`.
    pub fn build(&self, name: &str) -> PathBuf {
        self.root.join("build").join(name)
    }

    /// Locks the cache (`<root>/lock`) for this process, waiting for any
    /// other boot test using it; unlocked when the file is dropped.
    pub fn lock(&self) -> Result<std::fs::File, String> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| format!("create {}: {e}", self.root.display()))?;
        let path = self.root.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                println!(
                    "    waiting for another boot test using {}",
                    self.root.display()
                );
                file.lock()
                    .map_err(|e| format!("lock {}: {e}", path.display()))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("lock {}: {e}", path.display()));
            }
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

/// What `boot-test` was asked for.
pub struct Options {
    /// `-smp` for QEMU.
    pub smp: u32,
    /// The depths booted, in order, each a boot of its own.
    pub paging: Vec<Paging>,
    /// QEMU is killed after this.
    pub timeout: Duration,
    /// Extra files for the initramfs: (path in the guest, host file).
    pub extra: Vec<(String, PathBuf)>,
}

impl Default for Options {
    fn default() -> Self {
        let secs = std::env::var("GMEM_KMAP_BOOT_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(15 * 60);
        Options {
            smp: 2,
            paging: BOTH_DEPTHS.to_vec(),
            timeout: Duration::from_secs(secs),
            extra: Vec::new(),
        }
    }
}

/// The depths booted unless `--paging` says otherwise, in order: 5-level,
/// what `-cpu max` gives, then 4-level.
const BOTH_DEPTHS: [Paging; 2] = [Paging::Five, Paging::Four];

/// `boot-test`'s command-line help.
pub const USAGE: &str =
    "  boot-test    build Linux 6.12 + kernel-patch/*.patch and boot it under QEMU,
               at 5-level paging then at 4-level (no5lvl), checking the KUnit
               results and the paging depth of each boot
               [--smp N] [--paging 4|5|both] [--timeout SECS]
               [--add GUEST_PATH=HOST_FILE]...
               (--paging 4 boots once, at 4-level; --add /tests/foo=./foo
               runs ./foo in the guest)";

/// `--paging 4|5|both` → the depths to boot at.
fn depths_option(v: &str) -> Result<Vec<Paging>, String> {
    match v {
        "4" => Ok(vec![Paging::Four]),
        "5" => Ok(vec![Paging::Five]),
        "both" => Ok(BOTH_DEPTHS.to_vec()),
        _ => Err(format!("--paging {v}: want 4, 5 or both")),
    }
}

impl Options {
    /// Parses `--smp N`, `--paging 4|5|both`, `--timeout SECS`,
    /// `--add GUEST=HOST`.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().ok_or(format!("{a} needs a value"));
            match a.as_str() {
                "--smp" => o.smp = value()?.parse().map_err(|e| format!("--smp: {e}"))?,
                "--paging" => o.paging = depths_option(value()?)?,
                "--timeout" => {
                    let s = value()?.parse().map_err(|e| format!("--timeout: {e}"))?;
                    o.timeout = Duration::from_secs(s);
                }
                "--add" => {
                    let v = value()?;
                    let (guest, host) = v
                        .split_once('=')
                        .ok_or(format!("--add {v}: want GUEST_PATH=HOST_FILE"))?;
                    o.extra.push((guest.to_string(), PathBuf::from(host)));
                }
                _ => return Err(format!("unknown option {a}")),
            }
        }
        Ok(o)
    }
}

/// `kernel-patch/`, or `$GMEM_KMAP_SERIES_DIR` (to try other patches).
pub fn series_dir() -> PathBuf {
    std::env::var_os("GMEM_KMAP_SERIES_DIR")
        .map_or_else(|| crate::root().join("kernel-patch"), PathBuf::from)
}

/// The expected suites: [`EXPECTED_SUITES`] or `$GMEM_KMAP_EXPECTED_SUITES`.
fn expected_suites() -> Vec<String> {
    match std::env::var("GMEM_KMAP_EXPECTED_SUITES") {
        Ok(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        Err(_) => EXPECTED_SUITES.iter().map(|s| s.to_string()).collect(),
    }
}

/// Runs stages in order; once one fails, those after it that need its
/// output are reported as not run.
struct Pipeline<'r> {
    report: &'r mut Report,
    failed: Option<&'static str>,
}

impl Pipeline<'_> {
    fn step(&mut self, name: &'static str, run: impl FnOnce() -> Result<(), String>) {
        if let Some(earlier) = self.failed {
            self.report.not_run(name, earlier);
            return;
        }
        let before = self.report.failed;
        self.report.stage(name, run);
        if self.report.failed > before {
            self.failed = Some(name);
        }
    }
}

/// What the build stages made, for booting.
pub struct Built {
    /// `arch/x86/boot/bzImage` of the `boot` configuration.
    pub kernel: PathBuf,
    /// The series' programs: (path in the guest, host file); tests under
    /// `/tests`, which `/init` runs, tools under `/bin`.
    pub programs: Vec<(String, PathBuf)>,
    tree: source::Tree,
    /// The stage that failed up to applying the series, if any: then the
    /// tree does not hold the series and `nomitig` is not built.
    series_failed: Option<&'static str>,
    /// One boot test or bench at a time per cache, until this is dropped.
    _lock: std::fs::File,
}

/// Runs the stages up to a kernel and its test programs; `None` when one
/// of them failed (already reported). `checkpatch` adds the style check.
pub fn build(report: &mut Report, cache: &Cache, checkpatch: bool) -> Option<Built> {
    let mut p = Pipeline {
        report,
        failed: None,
    };
    let built = build_stages(&mut p, cache, checkpatch);
    if p.failed.is_some() { None } else { built }
}

/// The build stages; `None` only when there is no tree, otherwise what was
/// built so far (`p.failed` says whether all of it was).
fn build_stages(p: &mut Pipeline, cache: &Cache, style: bool) -> Option<Built> {
    p.step("kernel: packages", packages::ensure);
    let mut tree = None;
    let mut lock = None;
    p.step("kernel: linux-source-6.12 tree", || {
        lock = Some(cache.lock()?);
        tree = Some(source::prepare(cache)?);
        Ok(())
    });
    let (Some(tree), Some(lock)) = (tree, lock) else {
        for name in LATER
            .iter()
            .filter(|n| style || ![CHECKPATCH, ROUND_TRIP, PANIC_PROBE, NO_TARGET].contains(*n))
        {
            p.step(name, || Ok(()));
        }
        return None;
    };
    p.step("kernel: patch series", || {
        series::apply(&tree, &series_dir())
    });
    let series_failed = p.failed;
    if style {
        // What was applied, exported again: kernel-patch/ is what its
        // branch exports, generated files included.
        p.report.stage(ROUND_TRIP, || {
            if series_failed.is_some() {
                return Err("the series did not apply".into());
            }
            branch::check(&tree.dir, &series_dir())
        });
        // Style does not stop the build and boot: both verdicts are wanted.
        p.report
            .stage(CHECKPATCH, || checkpatch::check(&tree, &series_dir()));
    }
    p.step("kernel: configure boot", || {
        config::configure(cache, &tree.dir, "boot").map(drop)
    });
    let mut kernel = PathBuf::new();
    p.step("kernel: build boot (bzImage, uapi headers)", || {
        let out = build::make(cache, &tree.dir, "boot", &["bzImage", "headers"])?;
        kernel = bzimage(&out)?;
        Ok(())
    });
    if style {
        // Checks of the tree's own Rust build rules; neither stops the boot.
        // Without the series the tree has neither rule to check.
        for (name, check) in [
            (
                PANIC_PROBE,
                toolchain::check_rejects_panics as fn(&Cache, &Path) -> _,
            ),
            (NO_TARGET, toolchain::hidden_without_target),
        ] {
            match series_failed {
                Some(earlier) => p.report.not_run(name, earlier),
                None => p.report.stage(name, || check(cache, &tree.dir)),
            }
        }
    }
    let mut programs = Vec::new();
    p.step("kernel: selftests (make, static)", || {
        programs = selftests::build(&tree.dir, &cache.build("boot"))?;
        Ok(())
    });
    Some(Built {
        kernel,
        programs,
        tree,
        series_failed,
        _lock: lock,
    })
}

/// Builds `bzImage` of configuration `name`: the `boot` fragment with the
/// symbols in `disable` (without `CONFIG_`) turned off, in
/// `<cache>/build/<name>`, from the tree `built` was made from: a kernel
/// that differs from the tested one only where a measurement needs it.
pub fn build_variant(
    cache: &Cache,
    built: &Built,
    name: &str,
    disable: &[&str],
) -> Result<PathBuf, String> {
    let tree = &built.tree.dir;
    config::configure_with(cache, tree, "boot", name, &[])?;
    let dot_config = cache.build(name).join(".config");
    let mut edit = std::process::Command::new(tree.join("scripts/config"));
    edit.arg("--file").arg(&dot_config);
    for symbol in disable {
        edit.args(["-d", symbol]);
    }
    let status = edit.status().map_err(|e| format!("scripts/config: {e}"))?;
    if !status.success() {
        return Err(format!("scripts/config: {status}"));
    }
    build::make(cache, tree, name, &["olddefconfig"])?;
    let text = std::fs::read_to_string(&dot_config).map_err(|e| e.to_string())?;
    for symbol in disable {
        if !text.contains(&format!("# CONFIG_{symbol} is not set")) {
            return Err(format!("{name}: CONFIG_{symbol} is still set"));
        }
    }
    let out = build::make(cache, tree, name, &["bzImage"])?;
    Ok(out.join("arch/x86/boot/bzImage"))
}

/// Runs every kernel stage into `report`.
pub fn boot_test(report: &mut Report, opts: &Options) {
    let cache = Cache::from_env();
    let mut p = Pipeline {
        report,
        failed: None,
    };
    let built = build_stages(&mut p, &cache, true);
    let initrd = cache.root.join("initramfs.cpio.gz");
    p.step("kernel: initramfs", || {
        let programs = built.as_ref().map_or(&[][..], |b| &b.programs[..]);
        let extra: Vec<_> = programs.iter().chain(&opts.extra).cloned().collect();
        make_initramfs(&initrd, &extra)
    });
    // Each boot is judged on its own: only what came before the boots
    // (the build, the initramfs) stops them.
    let before_boots = p.failed;
    let kernel = built.as_ref().map(|b| b.kernel.as_path());
    for &paging in &opts.paging {
        p.failed = before_boots;
        boot_and_judge(&mut p, &cache, Kernel::Boot, kernel, &initrd, opts, paging);
    }
    p.failed = before_boots;
    stress_boot(&mut p, &cache, Kernel::Boot, kernel, built.as_ref());
    p.failed = before_boots;
    debug_kernel(&mut p, &cache, built.as_ref(), opts);
    let Some(built) = built else {
        p.report.not_run(NOMITIG, "kernel: linux-source-6.12 tree");
        return;
    };
    // Needs only the series applied, not the boot.
    if let Some(earlier) = built.series_failed {
        p.report.not_run(NOMITIG, earlier);
        return;
    }
    p.report.skippable(NOMITIG, || {
        if !built.tree.dir.join(SERIES_C).exists() {
            return Ok(Some(format!("series has no {SERIES_C} yet")));
        }
        config::configure(&cache, &built.tree.dir, "nomitig")?;
        build::make(&cache, &built.tree.dir, "nomitig", NOMITIG_OBJECTS)?;
        Ok(None)
    });
}

/// The kernels the boot test boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// `boot.config`: as Debian builds it, the tested kernel.
    Boot,
    /// `boot.config` + `debug.config`: the kernel's bug detectors on.
    Debug,
}

impl Kernel {
    /// The suites its boots must show: the debug kernel runs the
    /// fault-injection program too (unless `GMEM_KMAP_EXPECTED_SUITES`
    /// names the suites).
    fn expected(self) -> Vec<String> {
        let mut suites = expected_suites();
        if self == Kernel::Debug && std::env::var_os("GMEM_KMAP_EXPECTED_SUITES").is_none() {
            suites.push(FAULT_SUITE.to_string());
        }
        suites
    }

    /// Its configuration's name, and its logs' prefix.
    fn name(self) -> &'static str {
        match self {
            Kernel::Boot => "boot",
            Kernel::Debug => "debug",
        }
    }

    /// How QEMU boots it: its vCPUs on one host thread, since the tests
    /// run nested guests ([`Extra::one_thread`]); for the debug kernel,
    /// more memory for KASAN's shadow and kmemleak's pool, and page
    /// poisoning's command-line switch.
    fn extra(self) -> Extra<'static> {
        match self {
            Kernel::Boot => Extra {
                one_thread: true,
                ..Extra::default()
            },
            Kernel::Debug => Extra {
                qemu: &["-m", "2G"],
                cmdline: DEBUG_CMDLINE,
                kernel: None,
                one_thread: true,
            },
        }
    }
}

/// The debug kernel's command line: page poisoning on (the config builds
/// it in, off), kmemleak on (the config does not turn it off).
const DEBUG_CMDLINE: &str = "page_poison=1";

/// The last test of the debug kernel's `/init` (tests run in name order):
/// kmemleak scans twice (an object must look unreferenced on two scans to
/// be reported) and fails the run on any report, which it prints.
const KMEMLEAK_SCAN: (&str, &str) = (
    "/tests/zz-kmemleak",
    r#"#!/bin/sh
k=/sys/kernel/debug/kmemleak
[ -w $k ] || { echo "kmemleak: $k missing"; exit 1; }
echo scan > $k; sleep 1; echo scan > $k
n=$(grep -c '^unreferenced object' $k)
cat $k
echo "kmemleak: $n leak(s) reported after the tests"
[ "$n" = 0 ]
"#,
);

/// The debug kernel: configured, built and booted at each depth with the
/// same tests as the boot kernel and kmemleak's scan last, each boot
/// judged as the boot kernel's are; any report of a detector (KASAN,
/// UBSAN, KFENCE, lockdep, debugobjects, the page allocator's checks,
/// kmemleak) fails its verdict.
fn debug_kernel(p: &mut Pipeline, cache: &Cache, built: Option<&Built>, opts: &Options) {
    let name = Kernel::Debug.name();
    p.step("kernel: configure debug (boot + debug.config)", || {
        let tree = &built.expect("built before").tree.dir;
        config::configure(cache, tree, name).map(drop)
    });
    let mut kernel = PathBuf::new();
    p.step("kernel: build debug (bzImage)", || {
        let tree = &built.expect("built before").tree.dir;
        let out = build::make(cache, tree, name, &["bzImage"])?;
        kernel = bzimage(&out)?;
        Ok(())
    });
    let initrd = cache.root.join("debug-initramfs.cpio.gz");
    p.step("kernel: initramfs, debug", || {
        let programs = debug_programs(&built.expect("built before").programs);
        let extra: Vec<_> = programs.iter().chain(&opts.extra).cloned().collect();
        let mut archive = initramfs_with(&extra)?;
        let (path, script) = KMEMLEAK_SCAN;
        println!("    + {path} (kmemleak's scan)");
        archive.file(path, script.as_bytes().to_vec(), 0o755);
        let size = archive.write_gz(&initrd)?;
        println!("    {} ({} KiB)", initrd.display(), size / 1024);
        Ok(())
    });
    let before_boots = p.failed;
    let image = before_boots.is_none().then_some(kernel.as_path());
    for &paging in &opts.paging {
        p.failed = before_boots;
        boot_and_judge(p, cache, Kernel::Debug, image, &initrd, opts, paging);
    }
    p.failed = before_boots;
    stress_boot(p, cache, Kernel::Debug, image, built);
    p.failed = before_boots;
    p.step(
        "kernel: faults injected, debug, debug_pagealloc=off",
        || {
            let programs = debug_programs(&built.expect("built before").programs);
            let image = image.expect("built before booting");
            let boot = AloneBoot {
                which: Kernel::Debug,
                smp: opts.smp,
                cmdline: FAULT_CMDLINE,
            };
            boot.run(cache, image, &programs, FAULT_PROGRAM, "debug-fault")
        },
    );
    p.failed = before_boots;
    p.step(
        "kernel: the window's preparation failed at boot, debug",
        || {
            let programs = debug_programs(&built.expect("built before").programs);
            window_fault_boots(
                cache,
                image.expect("built before booting"),
                &programs,
                opts.smp,
            )
        },
    );
}

/// Boots the debug kernel with `fail_gmem_kmap=1,100,<n>,1`, which fails
/// the n-th allocation of the window's preparation, for n = 1, 2, ...
/// until a boot's window comes up all the same: every allocation has then
/// been failed once. [`FAULT_PROGRAM`] checks in each boot what a VMM sees
/// (the flag refused with EINVAL); the log must show the failure injected
/// and one line of the window's, its error.
fn window_fault_boots(
    cache: &Cache,
    image: &Path,
    programs: &[(String, PathBuf)],
    smp: u32,
) -> Result<(), String> {
    for n in 1..=WINDOW_FAULT_MAX {
        let cmdline = format!("kunit.enable=0 fail_gmem_kmap=1,100,{n},1");
        let boot = AloneBoot {
            which: Kernel::Debug,
            smp,
            cmdline: &cmdline,
        };
        let tag = format!("debug-window-fault{n}");
        boot.run(cache, image, programs, FAULT_PROGRAM, &tag)?;
        let log = read_log(&cache.log(&tag))?;
        match window_fault_outcome(&log)? {
            WindowFault::Off(line) => println!("    allocation {n} failed: `{line}`"),
            WindowFault::On if n > 1 => {
                println!("    allocation {n}: none; the window came up: every one was failed");
                return Ok(());
            }
            WindowFault::On => return Err("the first allocation failed nothing".into()),
        }
    }
    Err(format!(
        "the window still failed at allocation {WINDOW_FAULT_MAX}: is the sweep ending?"
    ))
}

/// More allocations than the window's preparation makes.
const WINDOW_FAULT_MAX: u32 = 8;

/// What a `fail_gmem_kmap=` boot did to the window.
#[derive(Debug, PartialEq)]
enum WindowFault {
    /// Off, with its one line.
    Off(String),
    /// Up: no n-th allocation to fail.
    On,
}

/// Judges the log of a `fail_gmem_kmap=` boot: the failure injected and
/// the window's one line saying so, or nothing injected and the window up.
fn window_fault_outcome(log: &str) -> Result<WindowFault, String> {
    let ours: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("gmem_kmap:"))
        .collect();
    let injected = log.contains("FAULT_INJECTION: forcing a failure");
    match (injected, ours.as_slice()) {
        (true, [one]) if one.contains("cannot reserve the window: -12") => {
            Ok(WindowFault::Off(one.to_string()))
        }
        (true, _) => Err(format!(
            "failure injected; the window said {} line(s), not one ENOMEM: {ours:?}",
            ours.len()
        )),
        (false, lines) if lines.iter().any(|l| l.contains(" slots for ")) => Ok(WindowFault::On),
        (false, _) => Err(format!(
            "nothing injected, and the window did not come up: {ours:?}"
        )),
    }
}

/// The programs as the debug kernel's initramfs has them: its own tests
/// under `/tests/` with the others.
fn debug_programs(programs: &[(String, PathBuf)]) -> Vec<(String, PathBuf)> {
    programs
        .iter()
        .map(
            |(guest, host)| match guest.strip_prefix(selftests::DEBUG_TESTS) {
                Some(name) => (format!("/tests{name}"), host.clone()),
                None => (guest.clone(), host.clone()),
            },
        )
        .collect()
}

/// The race stress program alone on [`STRESS_SMP`] CPUs (KUnit off, it ran
/// in the other boots), at the depth `-cpu max` gives, judged as a boot.
fn stress_boot(
    p: &mut Pipeline,
    cache: &Cache,
    which: Kernel,
    image: Option<&Path>,
    built: Option<&Built>,
) {
    let stage = match which {
        Kernel::Boot => "kernel: race stress on 8 CPUs",
        Kernel::Debug => "kernel: race stress on 8 CPUs, debug",
    };
    p.step(stage, || {
        let programs = &built.expect("built before booting").programs;
        let image = image.expect("built before booting");
        let boot = AloneBoot {
            which,
            smp: STRESS_SMP,
            cmdline: "kunit.enable=0",
        };
        let tag = format!("{}-stress-smp{STRESS_SMP}", which.name());
        boot.run(cache, image, programs, STRESS_PROGRAM, &tag)
    });
}

/// A boot of one of the series' test programs alone: `which` kernel on
/// `smp` CPUs at the depth `-cpu max` gives, `cmdline` added to the
/// kernel's own.
struct AloneBoot<'a> {
    which: Kernel,
    smp: u32,
    cmdline: &'a str,
}

impl AloneBoot<'_> {
    /// Boots `image` into an initramfs whose only test is `program` (its
    /// name among `programs`; kmemleak's scan after it on the debug
    /// kernel), logged to `logs/<tag>.log`, and judges the log with
    /// `selftest <program>` the one suite expected.
    fn run(
        &self,
        cache: &Cache,
        image: &Path,
        programs: &[(String, PathBuf)],
        program: &str,
        tag: &str,
    ) -> Result<(), String> {
        let (guest, host) = programs
            .iter()
            .find(|(guest, _)| guest.ends_with(&format!("/{program}")))
            .ok_or(format!("{program} was not built"))?;
        let mut archive = Initramfs::standard()?;
        archive.host_file(guest, host)?;
        if matches!(self.which, Kernel::Debug) {
            let (path, script) = KMEMLEAK_SCAN;
            archive.file(path, script.as_bytes().to_vec(), 0o755);
        }
        let initrd = cache.root.join(format!("{tag}-initramfs.cpio.gz"));
        archive.write_gz(&initrd)?;
        let log = cache.log(tag);
        let extra = self.which.extra();
        let cmdline = format!("{} {}", extra.cmdline, self.cmdline);
        let extra = Extra {
            cmdline: &cmdline,
            ..extra
        };
        let timeout = Options::default().timeout;
        qemu::boot(image, &initrd, self.smp, Paging::Five, timeout, &log, extra)?.result()?;
        verdict_of(&log, Paging::Five, &[format!("selftest {program}")])
    }
}

/// One boot of `kernel` at `paging` depth and its verdict, two stages;
/// `image` is `None` only when the pipeline has already failed.
fn boot_and_judge(
    p: &mut Pipeline,
    cache: &Cache,
    which: Kernel,
    image: Option<&Path>,
    initrd: &Path,
    opts: &Options,
    paging: Paging,
) {
    let [boot_stage, verdict_stage] = boot_stages(which, paging);
    let log = cache.log(&format!("{}-{}", which.name(), paging.tag()));
    let mut booted = false;
    p.step(boot_stage, || {
        let kernel = image.expect("built before booting");
        let boot = qemu::boot(
            kernel,
            initrd,
            opts.smp,
            paging,
            opts.timeout,
            &log,
            which.extra(),
        )?;
        booted = true;
        boot.result()
    });
    // Whatever a boot printed is judged, even when QEMU failed or hung.
    if booted {
        p.failed = None;
    }
    p.step(verdict_stage, || {
        verdict_of(&log, paging, &which.expected())
    });
}

/// The names of the boot's stage and of its verdict's for `which` kernel
/// at `paging`; `&'static` as [`Pipeline`] keeps the name of the stage
/// that failed.
fn boot_stages(which: Kernel, paging: Paging) -> [&'static str; 2] {
    macro_rules! at {
        ($kernel:literal, $depth:literal) => {
            [
                concat!("kernel: boot ", $kernel, "under QEMU, ", $depth, " paging"),
                concat!(
                    "kernel: ",
                    $kernel,
                    "KUnit results and boot log, ",
                    $depth,
                    " paging"
                ),
            ]
        };
    }
    match (which, paging) {
        (Kernel::Boot, Paging::Five) => at!("", "5-level"),
        (Kernel::Boot, Paging::Four) => at!("", "4-level"),
        (Kernel::Debug, Paging::Five) => at!("debug ", "5-level"),
        (Kernel::Debug, Paging::Four) => at!("debug ", "4-level"),
    }
}

/// The log of a [`boot_script`] boot: `logs/<name>-smp<N>-<depth>.log`.
pub fn script_log(cache: &Cache, name: &str, smp: u32, paging: Paging) -> PathBuf {
    cache.log(&format!("{name}-smp{smp}-{}", paging.tag()))
}

/// Ok when `log` reports the paging depth `asked` and no other; otherwise
/// why not. A figure measured at another depth than the one it is filed
/// under would compare the wrong boots.
pub fn check_paging(log: &str, asked: Paging) -> Result<(), String> {
    ktap::paging_problem(&ktap::paging(log), asked).map_or(Ok(()), Err)
}

/// Boots the built kernel on `smp` CPUs at `paging` depth into an initramfs
/// whose only test is `script` (a shell script run as `/tests/<name>`),
/// with the series' programs in `/bin`, `extra` options, console into
/// [`script_log`]; returns the console log, or why the boot is not to be trusted (a crash,
/// a warning, the script's non-zero exit, another paging depth).
pub fn boot_script(
    cache: &Cache,
    built: &Built,
    smp: u32,
    paging: Paging,
    name: &str,
    script: &str,
    extra: Extra<'_>,
) -> Result<String, String> {
    let mut archive = Initramfs::standard()?;
    for (guest, host) in &built.programs {
        let base = Path::new(guest)
            .file_name()
            .ok_or("program without a name")?;
        archive.host_file(&format!("/bin/{}", base.to_string_lossy()), host)?;
    }
    archive.file(&format!("/tests/{name}"), script.as_bytes().to_vec(), 0o755);
    let initrd = cache.root.join(format!("{name}-initramfs.cpio.gz"));
    archive.write_gz(&initrd)?;
    let log = script_log(cache, name, smp, paging);
    qemu::boot(
        extra.kernel.unwrap_or(&built.kernel),
        &initrd,
        smp,
        paging,
        Options::default().timeout,
        &log,
        extra,
    )?
    .result()?;
    let text = read_log(&log)?;
    let mut problems = ktap::problems(&text, &ktap::parse(&text), &[]);
    problems.extend(check_paging(&text, paging).err());
    if let Some(first) = problems.first() {
        return Err(format!(
            "{first} (and {} more); log: {}",
            problems.len() - 1,
            log.display()
        ));
    }
    Ok(text)
}

const CHECKPATCH: &str = "kernel: checkpatch --strict";
const ROUND_TRIP: &str = "kernel: series export --check (round trip)";
const PANIC_PROBE: &str = "kernel: the object check rejects a panic path";
const NO_TARGET: &str = "kernel: Kconfig hides GMEM_KMAP without the Rust target";

/// The stages after the tree, named when the tree could not be made.
const LATER: &[&str] = &[
    "kernel: patch series",
    ROUND_TRIP,
    CHECKPATCH,
    "kernel: configure boot",
    "kernel: build boot (bzImage, uapi headers)",
    PANIC_PROBE,
    NO_TARGET,
    "kernel: selftests (make, static)",
];

const NOMITIG: &str = "kernel: series objects with mitigations off (nomitig)";

/// The bzImage a build in `out` made, with its size printed.
fn bzimage(out: &Path) -> Result<PathBuf, String> {
    let kernel = out.join("arch/x86/boot/bzImage");
    let size = std::fs::metadata(&kernel).map_err(|e| e.to_string())?.len();
    println!("    {} ({} KiB)", kernel.display(), size / 1024);
    Ok(kernel)
}

/// The standard initramfs with the extra files.
fn initramfs_with(extra: &[(String, PathBuf)]) -> Result<Initramfs, String> {
    let mut archive = Initramfs::standard()?;
    for (guest, host) in extra {
        println!("    + {guest} <- {}", host.display());
        archive.host_file(guest, host)?;
    }
    Ok(archive)
}

/// Writes the initramfs with the extra files.
fn make_initramfs(path: &Path, extra: &[(String, PathBuf)]) -> Result<(), String> {
    let size = initramfs_with(extra)?.write_gz(path)?;
    println!("    {} ({} KiB)", path.display(), size / 1024);
    Ok(())
}

/// A console log, as text whatever bytes the serial line gave.
fn read_log(log: &Path) -> Result<String, String> {
    let bytes = std::fs::read(log).map_err(|e| format!("read {}: {e}", log.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Judges the log of a boot at `paging` with the `expected` suites: prints
/// the suite table, the KTAP summary lines and the depth the kernel
/// reported, fails on any problem.
fn verdict_of(log: &Path, paging: Paging, expected: &[String]) -> Result<(), String> {
    let text = read_log(log)?;
    let parsed = ktap::parse(&text);
    println!("    expected suites: {}", expected.join(", "));
    for line in ktap::table(&parsed, expected).lines() {
        println!("    {line}");
    }
    println!("    KTAP summary lines:");
    for s in &parsed.summaries {
        println!("    | {s}");
    }
    for line in ktap::program_output(&text) {
        println!("    | {line}");
    }
    let found = ktap::paging(&text);
    println!(
        "    paging: asked for {paging}, the kernel reports {}",
        ktap::depths(&found)
    );
    let mut problems = ktap::problems(&text, &parsed, expected);
    problems.extend(depth_problem(&found, paging, expected));
    for p in &problems {
        println!("    problem: {p}");
    }
    match problems.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} problem(s), the first: {first}; log: {}",
            problems.len(),
            log.display()
        )),
    }
}

/// The boot test's judgement of the depths a boot reported: the one asked
/// for, and only it. Silence is accepted only when [`PAGING_SUITE`], which
/// reports the depth, is not expected (`GMEM_KMAP_EXPECTED_SUITES` trying a
/// kernel without the series).
fn depth_problem(found: &[u8], asked: Paging, expected: &[String]) -> Option<String> {
    let must_report = expected.iter().any(|s| s == PAGING_SUITE);
    if found.is_empty() && !must_report {
        return None;
    }
    ktap::paging_problem(found, asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn expected_suites_of(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn boots_both_depths_unless_told_otherwise() {
        let o = Options::parse(&args("--smp 4")).unwrap();
        assert_eq!((o.smp, o.paging), (4, vec![Paging::Five, Paging::Four]));
        let o = Options::parse(&args("--paging 4")).unwrap();
        assert_eq!(o.paging, [Paging::Four]);
        let o = Options::parse(&args("--paging 5")).unwrap();
        assert_eq!(o.paging, [Paging::Five]);
        let o = Options::parse(&args("--paging both")).unwrap();
        assert_eq!(o.paging, BOTH_DEPTHS);
        assert!(Options::parse(&args("--paging 3")).is_err());
        assert!(Options::parse(&args("--paging")).is_err());
    }

    #[test]
    fn each_depth_has_its_own_stages() {
        assert_eq!(
            boot_stages(Kernel::Boot, Paging::Five),
            [
                "kernel: boot under QEMU, 5-level paging",
                "kernel: KUnit results and boot log, 5-level paging"
            ]
        );
        assert_eq!(
            boot_stages(Kernel::Debug, Paging::Four),
            [
                "kernel: boot debug under QEMU, 4-level paging",
                "kernel: debug KUnit results and boot log, 4-level paging"
            ]
        );
        for which in [Kernel::Boot, Kernel::Debug] {
            for paging in BOTH_DEPTHS {
                for name in boot_stages(which, paging) {
                    assert!(name.ends_with(&format!(" {paging} paging")), "{name}");
                }
            }
        }
    }

    #[test]
    fn the_depth_must_be_reported_when_its_suite_is_expected() {
        let with_suite = expected_suites_of(&[PAGING_SUITE]);
        let without = expected_suites_of(&["list-kunit-test"]);
        assert!(depth_problem(&[], Paging::Five, &with_suite).is_some());
        assert_eq!(depth_problem(&[], Paging::Five, &without), None);
        assert_eq!(depth_problem(&[5], Paging::Five, &with_suite), None);
        // A depth reported is checked whatever is expected.
        assert!(depth_problem(&[4], Paging::Five, &without).is_some());
        assert!(depth_problem(&[5, 4], Paging::Four, &without).is_some());
    }

    #[test]
    fn check_paging_names_what_the_kernel_said() {
        assert_eq!(
            check_paging("    # paging: 4-level\n", Paging::Four),
            Ok(())
        );
        assert_eq!(
            check_paging("[    2.000001]     # paging: 4-level\n", Paging::Five),
            Err("asked for 5-level paging, the kernel reports 4-level".into())
        );
        assert!(
            check_paging("", Paging::Four)
                .unwrap_err()
                .contains("no `# paging:` line")
        );
    }

    #[test]
    fn window_fault_outcomes() {
        let off = "FAULT_INJECTION: forcing a failure.\r\nname (null), interval 1\r\n\
                   gmem_kmap: cannot reserve the window: -12\r\n";
        assert_eq!(
            window_fault_outcome(off),
            Ok(WindowFault::Off(
                "gmem_kmap: cannot reserve the window: -12".into()
            ))
        );
        let on = "gmem_kmap: 32 slots for 2 possible CPUs\r\n\
                  gmem_kmap: private window in each process's own page tables\r\n";
        assert_eq!(window_fault_outcome(on), Ok(WindowFault::On));
        // Injected, yet the window said nothing, more than one line, or
        // another error; or nothing injected and no window either.
        for bad in [
            "FAULT_INJECTION: forcing a failure.\n",
            "FAULT_INJECTION: forcing a failure.\ngmem_kmap: cannot reserve the window: -12\n\
             gmem_kmap: the core refused the window: -22\n",
            "FAULT_INJECTION: forcing a failure.\ngmem_kmap: cannot reserve the window: -22\n",
            "gmem_kmap: cannot reserve the window: -12\n",
            "",
        ] {
            assert!(window_fault_outcome(bad).is_err(), "{bad:?}");
        }
    }
}
