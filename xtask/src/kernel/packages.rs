// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The Debian packages the kernel pipeline needs, installed with apt when
//! missing (as root): the 6.12 source tarball, QEMU, busybox for the
//! initramfs, ccache, the kernel's build dependencies, libc.a (the
//! selftests are linked static) and what checkpatch.pl's SPDX check
//! (scripts/spdxcheck.py) imports.

use anyhow::Context as _;

use super::source::PACKAGE;
pub use crate::prereq::installed;

/// Besides the source ([`PACKAGE`]).
const PACKAGES: &str = "qemu-system-x86 busybox-static ccache flex bison bc \
    libelf-dev libssl-dev cpio gcc libc6-dev make git python3 python3-ply python3-git";

/// Installs the missing packages, the source at the version the series
/// names in its cover letter: Debian's security updates move
/// `linux-source-6.12` on under a series, which may then no longer apply
/// (6.12.118 split `kvm_gmem_bind()`). Moving to a new version is a rebase
/// (`series edit`), done on purpose.
pub fn ensure() -> anyhow::Result<()> {
    let version = super::source::base_version(&super::series_dir());
    let source = version.map(|v| format!("{PACKAGE}={v}"));
    let source = source.as_deref().unwrap_or(PACKAGE);
    let packages: Vec<&str> = [source]
        .into_iter()
        .chain(PACKAGES.split_whitespace())
        .collect();
    let done = crate::prereq::apt_ensure(&packages);
    match installed(source) {
        true => done,
        false => done.with_context(|| {
            format!(
                "the series was made for {source}: if apt no longer offers it, \
                 rebase the series onto the installed version (`cargo xtask series edit`)"
            )
        }),
    }
}
