// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The Debian packages the kernel pipeline needs, installed with apt when
//! missing (as root).

use anyhow::{Context as _, Result, ensure};
use std::process::Command;
use std::time::Instant;

/// The 6.12 source tarball, QEMU, busybox for the initramfs, ccache, the
/// kernel's build dependencies, libc.a (the selftests are linked static)
/// and what checkpatch.pl's SPDX check (scripts/spdxcheck.py) imports.
const PACKAGES: &str = "linux-source-6.12 qemu-system-x86 busybox-static ccache flex bison bc \
    libelf-dev libssl-dev cpio gcc libc6-dev make git python3 python3-ply python3-git";

/// True when dpkg says `pkg` is installed.
pub fn installed(pkg: &str) -> bool {
    let query = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output();
    query.is_ok_and(|o| o.status.success() && o.stdout.ends_with(b" installed"))
}

/// Installs the missing packages, printing what and how long it took.
pub fn ensure() -> Result<()> {
    let missing = || {
        PACKAGES
            .split_whitespace()
            .filter(|p| !installed(p))
            .collect::<Vec<_>>()
    };
    let wanted = missing();
    if wanted.is_empty() {
        let n = PACKAGES.split_whitespace().count();
        println!("    all {n} packages installed");
        return Ok(());
    }
    let start = Instant::now();
    let done = crate::prereq::apt_install(&wanted);
    let still = missing();
    done.with_context(|| format!("still missing: {still:?}"))?;
    ensure!(
        still.is_empty(),
        "apt-get succeeded but still missing: {still:?}"
    );
    let took = start.elapsed().as_secs();
    println!("    installed {} in {took}s", wanted.join(" "));
    Ok(())
}
