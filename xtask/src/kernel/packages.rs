// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The Debian packages the kernel pipeline needs, installed with apt when
//! missing (as root): the 6.12 source tarball, QEMU, busybox for the
//! initramfs, ccache, the kernel's build dependencies, libc.a (the
//! selftests are linked static) and what checkpatch.pl's SPDX check
//! (scripts/spdxcheck.py) imports.

pub use crate::prereq::installed;

const PACKAGES: &str = "linux-source-6.12 qemu-system-x86 busybox-static ccache flex bison bc \
    libelf-dev libssl-dev cpio gcc libc6-dev make git python3 python3-ply python3-git";

/// Installs the missing packages.
pub fn ensure() -> anyhow::Result<()> {
    crate::prereq::apt_ensure(&PACKAGES.split_whitespace().collect::<Vec<_>>())
}
