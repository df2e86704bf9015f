// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The boots: each kernel at each paging depth with every test, then its
//! boots of one program alone; the benchmark's boots of a script.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};

use super::ktap::{verdict_of, window_fault_outcome};
use super::stage::{Kernel, Pipeline, Stage};
use super::{Built, Cache, Extra, Initramfs, Options, Paging, qemu, selftests};

const STRESS: &str = "guest_memfd_no_direct_map_stress_test";
/// Run by the debug kernel only.
const FAULT: &str = "guest_memfd_no_direct_map_fault_test";

/// Files of an initramfs: (path in the guest, host file).
type Files = [(String, PathBuf)];

/// One kernel's boots.
#[derive(Clone, Copy)]
pub struct Boots<'a> {
    pub cache: &'a Cache,
    pub kernel: Kernel,
    /// Its bzImage; `None` when its build failed (then no boot runs).
    pub image: Option<&'a Path>,
    /// The series' programs, for the initramfs.
    pub programs: &'a Files,
    pub opts: &'a Options,
}

impl Boots<'_> {
    /// Its initramfs, a boot and its verdict at each depth, the race stress
    /// alone; the debug kernel's faults alone and the window's faults.
    pub fn run(self, p: &mut Pipeline) {
        let (cache, k, opts) = (self.cache, self.kernel, self.opts);
        let debug = k == Kernel::Debug;
        let initrd = cache.root.join(format!("{}-initramfs.cpio.gz", k.name()));
        let files = [self.programs, &opts.extra].concat();
        let initramfs = || write_initramfs(&initrd, debug, &files, &[]);
        p.run(Stage::Initramfs(k), initramfs);
        let ours = super::EXPECTED_SUITES.iter().map(|&s| s.into());
        let fault = debug.then(|| format!("selftest {FAULT}"));
        let given = |s: &String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let expected: Vec<String> = match &crate::settings().expected_suites {
            Some(list) => list.iter().filter_map(given).collect(),
            None => ours.chain(fault).collect(),
        };
        for &paging in opts.paging {
            // The log is judged even when QEMU failed or hung.
            let log = cache.log(&format!("{}-{}", k.name(), paging.tag()));
            let boot = || self.boot(&initrd, &log, (opts.smp, paging), "");
            p.run(Stage::Boot(k, paging), boot);
            let verdict = || verdict_of(&log, paging, Some(&expected));
            p.run(Stage::Verdict(k, paging), verdict);
        }
        let stress = || self.alone("stress-smp8", Some(8), "", STRESS);
        p.run(Stage::Stress(k), stress);
        if debug {
            // Faults meeting the direct map's splits of huge pages.
            let cmdline = "debug_pagealloc=off";
            p.run(Stage::Faults, || self.alone("fault", None, cmdline, FAULT));
            p.run(Stage::WindowFaults, || self.window_faults());
        }
    }

    /// Boots `initrd` at (CPUs, depth), `cmdline` added: debug with page
    /// poisoning and memory for KASAN, kmemleak.
    fn boot(self, initrd: &Path, log: &Path, at: (u32, Paging), cmdline: &str) -> Result<()> {
        let debug = self.kernel == Kernel::Debug;
        let cmdline = format!("{}{cmdline}", if debug { "page_poison=1 " } else { "" });
        let extra = Extra {
            qemu: if debug { &["-m", "2G"] } else { &[] },
            cmdline: &cmdline,
            kernel: None,
            one_thread: true,
        };
        let image = self.image.expect("built before booting");
        qemu::boot(image, initrd, at, log, extra)
    }

    /// Boots `program` alone (KUnit off; it ran already), logged as `<kernel>-<name>`: the log.
    fn alone(self, name: &str, smp: Option<u32>, cmdline: &str, program: &str) -> Result<String> {
        let ours = |(guest, _): &&(String, PathBuf)| guest.ends_with(&format!("/{program}"));
        let found = self.programs.iter().find(ours);
        let found = found.with_context(|| format!("{program} was not built"))?;
        let name = format!("{}-{name}", self.kernel.name());
        let initrd = self.cache.root.join(format!("{name}-initramfs.cpio.gz"));
        let debug = self.kernel == Kernel::Debug;
        write_initramfs(&initrd, debug, std::slice::from_ref(found), &[])?;
        let (log, cmdline) = (self.cache.log(&name), format!("kunit.enable=0 {cmdline}"));
        let smp = smp.unwrap_or(self.opts.smp);
        self.boot(&initrd, &log, (smp, Paging::Five), &cmdline)?;
        verdict_of(&log, Paging::Five, Some(&[format!("selftest {program}")]))
    }

    /// Fails the n-th allocation of the window's setup, n = 1, 2, ... until the window comes up.
    fn window_faults(self) -> Result<()> {
        const MAX: u32 = 8; // More than the window's preparation makes.
        for n in 1..=MAX {
            let cmdline = format!("fail_gmem_kmap=1,100,{n},1");
            let log = self.alone(&format!("window-fault{n}"), None, &cmdline, FAULT)?;
            let Some(line) = window_fault_outcome(&log)? else {
                ensure!(n > 1, "the first allocation failed nothing");
                println!("    allocation {n}: none; the window came up: every one was failed");
                return Ok(());
            };
            println!("    allocation {n} failed: `{line}`");
        }
        bail!("the window still failed at allocation {MAX}: is the sweep ending?")
    }
}

/// Writes to `path` an initramfs of `files` and `texts`; debug: debug tests and kmemleak's scan.
fn write_initramfs(path: &Path, debug: bool, files: &Files, texts: &[(&str, &str)]) -> Result<()> {
    let busybox = Path::new("/bin/busybox");
    let mut archive = Initramfs::new(busybox).context("package busybox-static")?;
    for (guest, host) in files {
        let guest = match guest.strip_prefix(selftests::DEBUG_TESTS) {
            Some(name) if debug => format!("/tests{name}"),
            _ => guest.clone(),
        };
        archive.host_file(&guest, host)?;
    }
    // kmemleak's scan runs last (in name order), the tests done.
    let kmemleak = ("/tests/zz-kmemleak", include_str!("zz-kmemleak.sh"));
    for (guest, text) in texts.iter().chain(debug.then_some(&kmemleak)) {
        archive.file(guest, text.as_bytes().to_vec(), 0o755);
    }
    let kib = archive.write_gz(path)? / 1024;
    println!("    {} ({kib} KiB, its files in {0}.list)", path.display());
    Ok(())
}

/// The log of a [`boot_script`] boot: `logs/<name>-smp<N>-<depth>.log`.
pub fn script_log(cache: &Cache, name: &str, smp: u32, paging: Paging) -> PathBuf {
    cache.log(&format!("{name}-smp{smp}-{}", paging.tag()))
}

/// Boots `extra.kernel` or the built one into `script` (`/tests/<name>`, the tools in `/bin`).
pub fn boot_script(
    cache: &Cache,
    built: &Built,
    (smp, paging): (u32, Paging),
    name: &str,
    script: &str,
    extra: Extra<'_>,
) -> Result<String> {
    let tool = |(guest, _): &&(String, PathBuf)| guest.starts_with("/bin/");
    let tools: Vec<_> = built.programs.iter().filter(tool).cloned().collect();
    let initrd = cache.root.join(format!("{name}-initramfs.cpio.gz"));
    let test = format!("/tests/{name}");
    write_initramfs(&initrd, false, &tools, &[(&test, script)])?;
    let log = script_log(cache, name, smp, paging);
    let image = extra.kernel.unwrap_or(&built.kernel);
    qemu::boot(image, &initrd, (smp, paging), &log, extra)?;
    verdict_of(&log, paging, None)
}
