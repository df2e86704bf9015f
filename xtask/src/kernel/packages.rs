// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The Debian packages the kernel pipeline needs, installed with apt (as root).

use anyhow::Context as _;

use super::source::PACKAGE;
pub use crate::prereq::installed;

/// Besides the source ([`PACKAGE`]): busybox for the initramfs, libc.a (the
/// selftests are static), python3-ply/-git for checkpatch.pl's SPDX check.
const PACKAGES: &str = "qemu-system-x86 busybox-static ccache flex bison bc \
    libelf-dev libssl-dev cpio gcc libc6-dev make git python3 python3-ply python3-git";

/// Installs the missing packages, the source at the series' version: Debian's
/// updates move it on, past where the series applies (6.12.118 did).
pub fn ensure() -> anyhow::Result<()> {
    let version = super::source::base_version(&super::series_dir());
    let source = version.map(|v| format!("{PACKAGE}={v}"));
    let source = source.as_deref().unwrap_or(PACKAGE);
    let mut packages = vec![source];
    packages.extend(PACKAGES.split_whitespace());
    let done = crate::prereq::apt_ensure(&packages);
    let rebase = "rebase the series onto the installed version (`cargo xtask series edit`)";
    match installed(source) {
        true => done,
        false => done.with_context(|| {
            format!("the series was made for {source}: if apt no longer offers it, {rebase}")
        }),
    }
}
