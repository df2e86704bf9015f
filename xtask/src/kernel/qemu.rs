// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Booting the test kernel under QEMU (TCG: the host's /dev/kvm cannot boot
//! an ordinary kernel), serial console into a log under `<cache>/logs/`,
//! with a hard timeout, at the [`Paging`] depth asked for.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::ktap;
use super::run::{Ended, clock, logged};
use anyhow::{Context as _, Result, anyhow};

/// The kernel command line. `kunit.enable=1` because allnoconfig leaves
/// KUNIT_DEFAULT_ENABLED off; `oops=panic` and `panic=-1` with
/// `-no-reboot` end the VM on the first oops; `kvm.force_emulation_prefix=1`
/// lets the selftest make KVM emulate an instruction of its choosing
/// (`KVM_FEP`), which it skips without.
pub const APPEND: &str =
    "console=ttyS0 panic=-1 kunit.enable=1 panic_on_warn=0 oops=panic kvm.force_emulation_prefix=1";

/// The depth of the page tables a boot runs with. The kernel is built with
/// `CONFIG_X86_5LEVEL=y` and `-cpu max` offers LA57 under TCG, so it boots
/// with 5 levels unless its command line says `no5lvl`; the series' code
/// walks both, so both are booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Paging {
    /// `no5lvl`: 4-level paging although the CPU has LA57.
    Four,
    /// LA57, from `-cpu max`.
    Five,
}

impl Paging {
    /// The number of levels, as the kernel reports it (`# paging: 5-level`).
    pub fn levels(self) -> u8 {
        match self {
            Paging::Four => 4,
            Paging::Five => 5,
        }
    }

    /// `5level`: for log file names, which should not need quoting.
    pub fn tag(self) -> String {
        format!("{}level", self.levels())
    }

    /// The kernel command line booting at this depth.
    fn append(self) -> String {
        match self {
            Paging::Four => format!("{APPEND} no5lvl"),
            Paging::Five => APPEND.to_string(),
        }
    }
}

impl fmt::Display for Paging {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}-level", self.levels())
    }
}

/// How a boot ended.
pub enum Boot {
    /// QEMU exited successfully (the guest powered off, or panicked and
    /// `-no-reboot` turned the reboot into an exit).
    Exited,
    /// QEMU exited with an error.
    Failed(String),
    /// Killed after the timeout.
    TimedOut(Duration),
}

impl Boot {
    /// Ok when QEMU exited by itself and successfully.
    pub fn result(self) -> Result<()> {
        match self {
            Boot::Exited => Ok(()),
            Boot::Failed(s) => Err(anyhow!("QEMU exited with {s}")),
            Boot::TimedOut(t) => Err(anyhow!("timed out after {}; QEMU killed", clock(t))),
        }
    }
}

/// What a boot adds to the standard command lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extra<'a> {
    /// QEMU options (such as `-icount`).
    pub qemu: &'a [&'a str],
    /// Kernel command-line words, after the standard ones (which they
    /// override).
    pub cmdline: &'a str,
    /// Another kernel image than the build's (for [`super::boot_script`]).
    pub kernel: Option<&'a Path>,
    /// One host thread for every vCPU (`-accel tcg,thread=single`) instead
    /// of one each. QEMU 7.2's SVM emulation is not safe across its vCPU
    /// threads: a nested guest sometimes resumes at the host's `VMRUN`
    /// return address (`__svm_vcpu_run`) and then shuts down, loops
    /// delivering `#PF`, or writes over host kernel memory (oopses in
    /// `rb_erase` and the tracing code followed). It does so with or
    /// without the series' flag and with any of the stress program's
    /// racers: in 5 of 13 stress runs on the boot kernel (3 of 137 on the
    /// slower debug kernel), and in none of 80 on one thread.
    pub one_thread: bool,
}

/// How many more times a boot is made when its log shows upstream's known
/// false positive ([`ktap::upstream_false_positive`]) instead of being
/// judged on it. One in about ten debug boots shows it, so three boots in
/// a row with it would say it is no longer the known one.
const UPSTREAM_RETRIES: u32 = 2;

/// Boots `kernel` with `initrd` on `smp` CPUs at `paging` depth, console
/// into `log`, with `extra` options. A boot whose log shows upstream's
/// known false positive is made again, up to [`UPSTREAM_RETRIES`] times,
/// its log kept as `<log>.<attempt>`; the last one is judged whatever it
/// shows.
pub fn boot(
    kernel: &Path,
    initrd: &Path,
    smp: u32,
    paging: Paging,
    timeout: Duration,
    log: &Path,
    extra: Extra<'_>,
) -> Result<Boot> {
    let mut qemu = command(kernel, initrd, smp, paging, extra);
    for attempt in 1..=UPSTREAM_RETRIES {
        let boot = run(&mut qemu, log, timeout)?;
        let Some(what) = ktap::upstream_false_positive(&super::verdict::read_log(log)?) else {
            return Ok(boot);
        };
        let kept = log.with_extension(format!("log.{attempt}"));
        std::fs::rename(log, &kept).with_context(|| format!("rename {}", log.display()))?;
        println!("    {what}: booting again; that log is {}", kept.display());
    }
    run(&mut qemu, log, timeout)
}

/// The QEMU command of a [`boot`].
fn command(kernel: &Path, initrd: &Path, smp: u32, paging: Paging, extra: Extra<'_>) -> Command {
    let mut append = paging.append();
    if !extra.cmdline.is_empty() {
        append = format!("{append} {}", extra.cmdline);
    }
    let mut qemu = Command::new("qemu-system-x86_64");
    let accel = if extra.one_thread {
        "tcg,thread=single"
    } else {
        "tcg"
    };
    qemu.args(["-accel", accel, "-cpu", "max"])
        .args(["-smp", &smp.to_string(), "-m", "1G"])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", &append])
        .args(extra.qemu);
    qemu
}

/// Runs `qemu` once, console into `log`, killed after `timeout`.
fn run(qemu: &mut Command, log: &Path, timeout: Duration) -> Result<Boot> {
    println!("    {}", command_line(qemu));
    println!("    log: {} (timeout {})", log.display(), clock(timeout));
    Ok(
        match logged(qemu, log, Some(timeout), |l| !l.trim().is_empty())? {
            Ended::Exited(s) if s.success() => Boot::Exited,
            Ended::Exited(s) => Boot::Failed(s.to_string()),
            Ended::TimedOut => Boot::TimedOut(timeout),
        },
    )
}

/// `cmd` as a shell would take it, arguments with spaces in double quotes:
/// printed from the command itself, so it is exactly what runs.
fn command_line(cmd: &Command) -> String {
    let quote = |a: &std::ffi::OsStr| {
        let a = a.to_string_lossy();
        if a.contains(' ') {
            format!("\"{a}\"")
        } else {
            a.into_owned()
        }
    };
    std::iter::once(quote(cmd.get_program()))
        .chain(cmd.get_args().map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_level_adds_no5lvl_to_the_command_line() {
        assert_eq!(Paging::Five.append(), APPEND);
        assert_eq!(Paging::Four.append(), format!("{APPEND} no5lvl"));
        for paging in [Paging::Four, Paging::Five] {
            let append = paging.append();
            let args: Vec<&str> = append.split_whitespace().collect();
            assert!(args.contains(&"kvm.force_emulation_prefix=1"), "{append}");
        }
        assert_eq!(
            (Paging::Four.to_string(), Paging::Five.tag()),
            ("4-level".to_string(), "5level".to_string())
        );
    }

    #[test]
    fn the_printed_command_line_quotes_arguments_with_spaces() {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-smp", "2", "-append", "console=ttyS0 no5lvl"]);
        assert_eq!(
            command_line(&cmd),
            "qemu-system-x86_64 -smp 2 -append \"console=ttyS0 no5lvl\""
        );
    }
}
