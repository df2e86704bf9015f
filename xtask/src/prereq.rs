// SPDX-License-Identifier: GPL-2.0 OR MIT
//! What a fresh Debian 12 machine lacks, installed or named exactly.

use crate::kernel::run::output;
use anyhow::{Context as _, Result, ensure};
use std::path::Path;
use std::process::Command;

/// Installs what is missing, or says exactly how to.
pub fn ensure() -> Result<()> {
    // Each says "up to date", offline too, when it has nothing to add.
    rustup(&["target", "add", "x86_64-unknown-none"])?;
    rustup(&["component", "add", "rustfmt", "clippy"])?;
    // cc, nm and readelf, which the checks run.
    apt_ensure(&["gcc", "binutils"])
}

fn rustup(args: &[&str]) -> Result<()> {
    let ran = Command::new("rustup").args(args).status();
    let ran = ran.context("rustup not found; install Rust with rustup first")?;
    ensure!(ran.success(), "`rustup {}` failed", args.join(" "));
    Ok(())
}

/// The version of package `name` that dpkg has installed.
pub fn version(name: &str) -> Option<String> {
    let query = ["-W", "-f=${Status} ${Version}", name];
    let text = output(Command::new("dpkg-query").args(query)).ok()?;
    text.split_once(" installed ").map(|(_, v)| v.into())
}

/// True when dpkg says `pkg` (`name` or `name=version`) is installed.
pub fn installed(pkg: &str) -> bool {
    let (name, wanted) = pkg.split_once('=').unwrap_or((pkg, ""));
    version(name).is_some_and(|v| wanted.is_empty() || v == wanted)
}

/// Installs those of `packages` dpkg lacks, printing what.
pub fn apt_ensure(packages: &[&str]) -> Result<()> {
    let missing = || packages.iter().copied().filter(|p| !installed(p));
    let wanted: Vec<&str> = missing().collect();
    if wanted.is_empty() {
        println!("    all {} packages installed", packages.len());
        return Ok(());
    }
    let done = apt_install(&wanted);
    let still: Vec<&str> = missing().collect();
    done.with_context(|| format!("still missing: {still:?}"))?;
    ensure!(still.is_empty(), "installed, but still missing: {still:?}");
    println!("    installed {}", wanted.join(" "));
    Ok(())
}

/// Installs `packages` with apt as root (a `name=version` may be a
/// downgrade), or fails naming the exact command to run.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let list = packages.join(" ");
    let install = format!("apt-get install -y --allow-downgrades --no-install-recommends {list}");
    let root = output(Command::new("id").arg("-u")).is_ok_and(|id| id == "0\n");
    let how = format!("missing {list}; run: sudo apt-get update && sudo {install}");
    ensure!(root && Path::new("/usr/bin/apt-get").exists(), how);
    println!("    installing {list}: {install}");
    let script = format!("apt-get update -qq && DEBIAN_FRONTEND=noninteractive {install}");
    let ran = Command::new("sh").args(["-c", &script]).status();
    ensure!(ran.is_ok_and(|s| s.success()), "`{install}` failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_package_is_installed_only_at_its_version() {
        let version = output(Command::new("dpkg-query").args(["-W", "-f=${Version}", "dpkg"]));
        let version = version.unwrap();
        assert!(installed("dpkg") && installed(&format!("dpkg={version}")));
        assert!(!installed("dpkg=0.0-not-this-one"));
        assert!(!installed("no-such-package-gmem-kmap"));
    }
}
