// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The Debian packages the kernel pipeline needs: the 6.12 source tarball,
//! QEMU, busybox for the initramfs, ccache and the kernel's build
//! dependencies. Installed with apt when missing (as root).

use anyhow::{Result, bail};
use std::process::Command;
use std::time::Instant;

/// What the kernel stages need. `--no-install-recommends` keeps QEMU's GUI
/// (~330 MB) out.
pub const PACKAGES: &[&str] = &[
    "linux-source-6.12",
    "qemu-system-x86",
    "busybox-static",
    "ccache",
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "libssl-dev",
    "cpio",
    "gcc",
    // libc.a: the series' selftests are linked static for the initramfs.
    "libc6-dev",
    "make",
    "git",
    "python3",
    // checkpatch.pl's SPDX check (scripts/spdxcheck.py) imports these.
    "python3-ply",
    "python3-git",
];

/// True when dpkg says `pkg` is installed.
pub fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.ends_with(b" installed"))
}

/// Installs the missing packages, printing what and how long it took.
pub fn ensure() -> Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        println!("    all {} packages installed", PACKAGES.len());
        return Ok(());
    }
    let start = Instant::now();
    let installed_ok = crate::prereq::apt_install(&missing);
    let still: Vec<&str> = missing.iter().copied().filter(|p| !installed(p)).collect();
    if let Err(e) = installed_ok {
        return Err(e.context(format!("still missing: {still:?}")));
    }
    if !still.is_empty() {
        bail!("apt-get succeeded but still missing: {still:?}");
    }
    println!(
        "    installed {} in {:.0}s",
        missing.join(" "),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
