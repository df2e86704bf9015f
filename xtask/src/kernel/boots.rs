// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The boots: the tested kernel at each paging depth with every test, the
//! race stress on 8 CPUs, the debug kernel the same way, and its
//! fault-injection boots; and the benchmark's boots of a script.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use super::stage::{Kernel, Pipeline, Stage};
use super::verdict::{WindowFault, read_log, verdict_of, window_fault_outcome};
use super::{Built, Cache, Extra, Initramfs, Options, Paging, boot_timeout, qemu, selftests};

/// The race stress program: at every boot with the other tests (2 CPUs),
/// and in a boot of its own on [`STRESS_SMP`] CPUs, for each kernel.
const STRESS_PROGRAM: &str = "guest_memfd_no_direct_map_stress_test";
/// The CPUs of the stress boots (as many vCPUs race as there are CPUs).
const STRESS_SMP: u32 = 8;

/// The fault-injection program, which only the debug kernel runs.
const FAULT_PROGRAM: &str = "guest_memfd_no_direct_map_fault_test";
/// Its suite, which the debug kernel's boots must show too.
const FAULT_SUITE: &str = "selftest guest_memfd_no_direct_map_fault_test";
/// A boot of the debug kernel with its direct map in huge pages again, so
/// that the injected failures meet the direct map's splits as well.
const FAULT_CMDLINE: &str = "debug_pagealloc=off kunit.enable=0";

/// More allocations than the window's preparation makes.
const WINDOW_FAULT_MAX: u32 = 8;

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

impl Kernel {
    /// The suites its boots must show: the debug kernel runs the
    /// fault-injection program too (unless `--expected-suites` names them).
    fn expected(self) -> Vec<String> {
        match &crate::settings().expected_suites {
            Some(list) => list.iter().filter(|s| !s.is_empty()).cloned().collect(),
            None => {
                let mut suites: Vec<String> = super::EXPECTED_SUITES
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                if self == Kernel::Debug {
                    suites.push(FAULT_SUITE.to_string());
                }
                suites
            }
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

    /// The programs as its initramfs has them: the debug kernel's own
    /// tests under `/tests/` with the others.
    fn programs(self, programs: &[(String, PathBuf)]) -> Vec<(String, PathBuf)> {
        let debug = |guest: &str| {
            let name = guest.strip_prefix(selftests::DEBUG_TESTS)?;
            (self == Kernel::Debug).then(|| format!("/tests{name}"))
        };
        let to_guest = |(guest, host): &(String, PathBuf)| {
            (debug(guest).unwrap_or_else(|| guest.clone()), host.clone())
        };
        programs.iter().map(to_guest).collect()
    }

    /// Its initramfs: every program, the `--add` files, kmemleak's scan
    /// last on the debug kernel.
    fn initramfs(self, programs: &[(String, PathBuf)], opts: &Options, path: &Path) -> Result<()> {
        let mut archive = Initramfs::standard()?;
        for (guest, host) in self.programs(programs).iter().chain(&opts.extra) {
            println!("    + {guest} <- {}", host.display());
            archive.host_file(guest, host)?;
        }
        if self == Kernel::Debug {
            let (path, script) = KMEMLEAK_SCAN;
            println!("    + {path} (kmemleak's scan)");
            archive.file(path, script.as_bytes().to_vec(), 0o755);
        }
        let size = archive.write_gz(path)?;
        println!("    {} ({} KiB)", path.display(), size / 1024);
        Ok(())
    }
}

/// The tested kernel's boots: the initramfs, a boot at each depth, the
/// stress on 8 CPUs.
pub fn boot_kernel(
    p: &mut Pipeline,
    cache: &Cache,
    image: Option<&Path>,
    programs: &[(String, PathBuf)],
    opts: &Options,
) {
    let which = Kernel::Boot;
    let initrd = cache.root.join("initramfs.cpio.gz");
    p.run(Stage::Initramfs(which), || {
        which.initramfs(programs, opts, &initrd)
    });
    for &paging in opts.paging.list() {
        boot_and_judge(p, cache, which, image, &initrd, opts.smp, paging);
    }
    stress_boot(p, cache, which, image, programs);
}

/// The debug kernel: configured, built and booted at each depth with the
/// same tests as the boot kernel and kmemleak's scan last, each boot
/// judged as the boot kernel's are (any detector's report fails it); then
/// the stress, and the fault-injection boots.
pub fn debug_kernel(
    p: &mut Pipeline,
    cache: &Cache,
    tree: Option<&Path>,
    programs: &[(String, PathBuf)],
    opts: &Options,
) {
    let which = Kernel::Debug;
    let tree = || tree.expect("the series applied");
    p.run(Stage::Configure(which), || {
        super::config::configure(cache, tree(), which.name())
    });
    let image = p.run(Stage::Build(which), || {
        super::bzimage(&super::build::make(
            cache,
            tree(),
            which.name(),
            &["bzImage"],
        )?)
    });
    let image = image.as_deref();
    let initrd = cache.root.join("debug-initramfs.cpio.gz");
    p.run(Stage::Initramfs(which), || {
        which.initramfs(programs, opts, &initrd)
    });
    for &paging in opts.paging.list() {
        boot_and_judge(p, cache, which, image, &initrd, opts.smp, paging);
    }
    stress_boot(p, cache, which, image, programs);
    let image = || image.expect("the debug kernel was built");
    let programs = which.programs(programs);
    p.run(Stage::Faults, || {
        let boot = AloneBoot {
            which,
            smp: opts.smp,
            cmdline: FAULT_CMDLINE,
        };
        boot.run(cache, image(), &programs, FAULT_PROGRAM, "debug-fault")
            .map(drop)
    });
    p.run(Stage::WindowFaults, || {
        window_fault_boots(cache, image(), &programs, opts.smp)
    });
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
) -> Result<()> {
    for n in 1..=WINDOW_FAULT_MAX {
        let cmdline = format!("kunit.enable=0 fail_gmem_kmap=1,100,{n},1");
        let boot = AloneBoot {
            which: Kernel::Debug,
            smp,
            cmdline: &cmdline,
        };
        let tag = format!("debug-window-fault{n}");
        let log = boot.run(cache, image, programs, FAULT_PROGRAM, &tag)?;
        match window_fault_outcome(&log)? {
            WindowFault::Off(line) => println!("    allocation {n} failed: `{line}`"),
            WindowFault::On if n > 1 => {
                println!("    allocation {n}: none; the window came up: every one was failed");
                return Ok(());
            }
            WindowFault::On => bail!("the first allocation failed nothing"),
        }
    }
    bail!("the window still failed at allocation {WINDOW_FAULT_MAX}: is the sweep ending?")
}

/// The race stress program alone on [`STRESS_SMP`] CPUs (KUnit off, it ran
/// in the other boots), at the depth `-cpu max` gives, judged as a boot.
fn stress_boot(
    p: &mut Pipeline,
    cache: &Cache,
    which: Kernel,
    image: Option<&Path>,
    programs: &[(String, PathBuf)],
) {
    p.run(Stage::Stress(which), || {
        let boot = AloneBoot {
            which,
            smp: STRESS_SMP,
            cmdline: "kunit.enable=0",
        };
        let tag = format!("{}-stress-smp{STRESS_SMP}", which.name());
        let image = image.expect("built before booting");
        boot.run(cache, image, programs, STRESS_PROGRAM, &tag)
            .map(drop)
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
    /// `selftest <program>` the one suite expected; returns the log.
    fn run(
        &self,
        cache: &Cache,
        image: &Path,
        programs: &[(String, PathBuf)],
        program: &str,
        tag: &str,
    ) -> Result<String> {
        let (guest, host) = programs
            .iter()
            .find(|(guest, _)| guest.ends_with(&format!("/{program}")))
            .with_context(|| format!("{program} was not built"))?;
        let mut archive = Initramfs::standard()?;
        archive.host_file(guest, host)?;
        if self.which == Kernel::Debug {
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
        let smp = self.smp;
        qemu::boot(
            image,
            &initrd,
            smp,
            Paging::Five,
            boot_timeout(),
            &log,
            extra,
        )?
        .result()?;
        verdict_of(&log, Paging::Five, &[format!("selftest {program}")])
    }
}

/// One boot of `which` kernel at `paging` depth and its verdict, two
/// stages; whatever a boot printed is judged, even when QEMU failed or
/// hung.
fn boot_and_judge(
    p: &mut Pipeline,
    cache: &Cache,
    which: Kernel,
    image: Option<&Path>,
    initrd: &Path,
    smp: u32,
    paging: Paging,
) {
    let log = cache.log(&format!("{}-{}", which.name(), paging.tag()));
    p.run(Stage::Boot(which, paging), || {
        let image = image.expect("built before booting");
        qemu::boot(
            image,
            initrd,
            smp,
            paging,
            boot_timeout(),
            &log,
            which.extra(),
        )?
        .result()
    });
    p.run(Stage::Verdict(which, paging), || {
        verdict_of(&log, paging, &which.expected()).map(drop)
    });
}

/// The log of a [`boot_script`] boot: `logs/<name>-smp<N>-<depth>.log`.
pub fn script_log(cache: &Cache, name: &str, smp: u32, paging: Paging) -> PathBuf {
    cache.log(&format!("{name}-smp{smp}-{}", paging.tag()))
}

/// Boots the built kernel on `smp` CPUs at `paging` depth into an initramfs
/// whose only test is `script` (a shell script run as `/tests/<name>`),
/// with the series' programs in `/bin`, `extra` options, console into
/// [`script_log`]; returns the console log, or why the boot is not to be
/// trusted (a crash, a warning, the script's non-zero exit, another paging
/// depth).
pub fn boot_script(
    cache: &Cache,
    built: &Built,
    smp: u32,
    paging: Paging,
    name: &str,
    script: &str,
    extra: Extra<'_>,
) -> Result<String> {
    let mut archive = Initramfs::standard()?;
    for (guest, host) in &built.programs {
        let base = Path::new(guest)
            .file_name()
            .context("program without a name")?;
        archive.host_file(&format!("/bin/{}", base.to_string_lossy()), host)?;
    }
    archive.file(&format!("/tests/{name}"), script.as_bytes().to_vec(), 0o755);
    let initrd = cache.root.join(format!("{name}-initramfs.cpio.gz"));
    archive.write_gz(&initrd)?;
    let log = script_log(cache, name, smp, paging);
    let image = extra.kernel.unwrap_or(&built.kernel);
    qemu::boot(image, &initrd, smp, paging, boot_timeout(), &log, extra)?.result()?;
    let text = read_log(&log)?;
    super::verdict::script_problems(&text, paging)
        .with_context(|| format!("log: {}", log.display()))?;
    Ok(text)
}
