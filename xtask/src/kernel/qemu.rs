// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Booting the test kernel under QEMU (TCG: the host's /dev/kvm cannot boot
//! an ordinary kernel), serial console into `<cache>/logs/boot.log`, with a
//! hard timeout.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::run::{Ended, clock, logged};

/// The kernel command line. `kunit.enable=1` because allnoconfig leaves
/// KUNIT_DEFAULT_ENABLED off; `oops=panic` and `panic=-1` with
/// `-no-reboot` end the VM on the first oops.
pub const APPEND: &str = "console=ttyS0 panic=-1 kunit.enable=1 panic_on_warn=0 oops=panic";

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
    pub fn result(self) -> Result<(), String> {
        match self {
            Boot::Exited => Ok(()),
            Boot::Failed(s) => Err(format!("QEMU exited with {s}")),
            Boot::TimedOut(t) => Err(format!("timed out after {}; QEMU killed", clock(t))),
        }
    }
}

/// Boots `kernel` with `initrd` on `smp` CPUs, console into `log`.
pub fn boot(
    kernel: &Path,
    initrd: &Path,
    smp: u32,
    timeout: Duration,
    log: &Path,
) -> Result<Boot, String> {
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-accel", "tcg", "-cpu", "max"])
        .args(["-smp", &smp.to_string(), "-m", "1G"])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", APPEND]);
    println!(
        "    qemu-system-x86_64 -accel tcg -cpu max -smp {smp} -m 1G -kernel {} -initrd {} -append \"{APPEND}\"",
        kernel.display(),
        initrd.display()
    );
    println!("    log: {} (timeout {})", log.display(), clock(timeout));
    Ok(
        match logged(&mut qemu, log, Some(timeout), |l| !l.trim().is_empty())? {
            Ended::Exited(s) if s.success() => Boot::Exited,
            Ended::Exited(s) => Boot::Failed(s.to_string()),
            Ended::TimedOut => Boot::TimedOut(timeout),
        },
    )
}
