// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The Debian packages the kernel pipeline needs: the 6.12 source tarball,
//! QEMU, busybox for the initramfs, ccache and the kernel's build
//! dependencies. Installed with apt when missing (as root).

use super::source::PACKAGE;
use anyhow::{Result, bail};
use std::process::Command;
use std::time::Instant;

/// What the kernel stages need. `--no-install-recommends` keeps QEMU's GUI
/// (~330 MB) out.
pub const PACKAGES: &[&str] = &[
    PACKAGE,
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

/// `linux-source-6.12=<version>` when the installed source is not the one
/// the series was made for: Debian's security updates move the package on
/// under a series, which may then no longer apply. Moving the series to a
/// new version is a rebase (`series edit`), done on purpose.
fn source_to_pin() -> Option<String> {
    let wanted = super::series::base_version(&super::series_dir())?;
    let installed = super::source::installed_version().ok();
    (installed.as_deref() != Some(wanted.as_str())).then(|| format!("{PACKAGE}={wanted}"))
}

/// What is missing: packages not installed, and the source at the
/// series' version when another is installed.
fn missing() -> Vec<String> {
    let pin = source_to_pin();
    let mut missing: Vec<String> = PACKAGES
        .iter()
        .filter(|p| !installed(p))
        .map(|p| p.to_string())
        .collect();
    if let Some(pin) = pin {
        missing.retain(|p| p != PACKAGE);
        missing.push(pin);
    }
    missing
}

/// Installs the missing packages, printing what and how long it took.
pub fn ensure() -> Result<()> {
    let missing = missing();
    if missing.is_empty() {
        println!("    all {} packages installed", PACKAGES.len());
        return Ok(());
    }
    let start = Instant::now();
    let names: Vec<&str> = missing.iter().map(String::as_str).collect();
    let installed_ok = crate::prereq::apt_install(&names);
    let still = self::missing();
    if let Err(e) = installed_ok {
        let e = e.context(format!("still missing: {still:?}"));
        return Err(
            match missing
                .iter()
                .find(|p| p.starts_with(&format!("{PACKAGE}=")))
            {
                Some(pin) => e.context(format!(
                    "the series was made for {pin}; if apt no longer offers it, rebase the \
                 series onto the installed version (`cargo xtask series edit`)"
                )),
                None => e,
            },
        );
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
