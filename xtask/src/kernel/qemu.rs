// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Booting the test kernel under QEMU TCG (the host's /dev/kvm cannot boot an ordinary kernel).

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::ktap;
use super::run::logged;
use anyhow::{Context as _, Result};

/// The kernel command line: KUnit on (allnoconfig leaves it off), the VM
/// ended by the first oops, `KVM_FEP` for the selftest (skipped without).
pub const APPEND: &str =
    "console=ttyS0 panic=-1 kunit.enable=1 panic_on_warn=0 oops=panic kvm.force_emulation_prefix=1";

/// The page-table depth of a boot (`-cpu max` offers LA57): both are booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Paging {
    /// `no5lvl`: 4-level paging although the CPU has LA57.
    Four = 4,
    Five = 5,
}

impl Paging {
    /// `5level`, for log file names.
    pub fn tag(self) -> String {
        format!("{}level", self as u8)
    }
}

impl fmt::Display for Paging {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}-level", *self as u8)
    }
}

/// What a boot adds to the standard command lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extra<'a> {
    pub qemu: &'a [&'a str],
    /// Kernel command-line words, after (overriding) the standard ones.
    pub cmdline: &'a str,
    /// Another kernel image than the build's (for [`super::boot_script`]).
    pub kernel: Option<&'a Path>,
    /// All vCPUs on one host thread: QEMU 7.2's SVM emulation crashed the
    /// host in 5 of 13 nested stress runs across threads, in none of 80 on one.
    pub one_thread: bool,
}

/// Boots again after upstream's known false positive (about one debug boot
/// in ten, [`ktap::upstream_false_positive`]); three in a row would not be.
const UPSTREAM_RETRIES: u32 = 2;

/// The kernel command line of a boot at `paging` depth with `extra` words.
fn append(paging: Paging, extra: &str) -> String {
    let depth = (paging == Paging::Four).then_some(" no5lvl");
    let line = format!("{APPEND}{} {extra}", depth.unwrap_or(""));
    line.trim_end().to_string()
}

/// Boots `kernel` with `initrd` (`--timeout`), console into `log`; a retry's log is `<log>.<n>`.
pub fn boot(
    kernel: &Path,
    initrd: &Path,
    at: (u32, Paging),
    log: &Path,
    extra: Extra<'_>,
) -> Result<()> {
    let (smp, paging) = at;
    let threads = extra.one_thread.then_some(",thread=single");
    let accel = format!("tcg{}", threads.unwrap_or(""));
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-accel", &accel, "-cpu", "max", "-m", "1G"]);
    qemu.args(["-smp", &smp.to_string(), "-nographic", "-no-reboot"]);
    qemu.args(["-nic", "none"]).arg("-kernel").arg(kernel);
    qemu.arg("-initrd").arg(initrd).arg("-append");
    qemu.arg(append(paging, extra.cmdline)).args(extra.qemu);
    let timeout = Some(Duration::from_secs(crate::settings().timeout));
    for attempt in 1..=UPSTREAM_RETRIES {
        let ended = logged(&mut qemu, log, timeout);
        let Some(what) = ktap::upstream_false_positive(&ktap::read_log(log)?) else {
            return ended;
        };
        let kept = log.with_extension(format!("log.{attempt}"));
        std::fs::rename(log, &kept).with_context(|| format!("rename {}", log.display()))?;
        println!("    {what}: booting again; that log is {}", kept.display());
    }
    logged(&mut qemu, log, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_depth_and_extra_words_go_on_the_command_line() {
        assert_eq!(append(Paging::Five, ""), APPEND);
        assert_eq!(append(Paging::Four, "a=1"), format!("{APPEND} no5lvl a=1"));
        let (four, five) = (Paging::Four, Paging::Five);
        assert_eq!(format!("{four} {}", five.tag()), "4-level 5level");
    }
}
