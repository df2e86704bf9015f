// SPDX-License-Identifier: GPL-2.0 OR MIT
//! What a fresh Debian 12 machine lacks, installed or named exactly.

use anyhow::{Context as _, Result, anyhow};
use std::process::Command;

/// Debian packages for commands the checks run.
const APT: &[(&str, &str)] = &[("cc", "gcc"), ("nm", "binutils"), ("readelf", "binutils")];

/// Installs what is missing, or says exactly how to.
pub fn ensure() -> Result<()> {
    ensure_rustup(
        &["target", "list", "--installed"],
        "x86_64-unknown-none",
        &["target", "add"],
    )?;
    for component in ["rustfmt", "clippy"] {
        ensure_rustup(
            &["component", "list", "--installed"],
            component,
            &["component", "add"],
        )?;
    }
    ensure_apt()
}

fn ensure_rustup(list: &[&str], item: &str, add: &[&str]) -> Result<()> {
    let installed = Command::new("rustup")
        .args(list)
        .output()
        .context("rustup not found; install Rust with rustup first")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.starts_with(item))
    {
        return Ok(());
    }
    println!("    installing {item}: rustup {} {item}", add.join(" "));
    let status = Command::new("rustup").args(add).arg(item).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(anyhow!("`rustup {} {item}` failed", add.join(" ")))
    }
}

fn ensure_apt() -> Result<()> {
    let mut missing: Vec<&str> = APT
        .iter()
        .filter(|(cmd, _)| !has_command(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)
}

/// Installs `packages` with apt (`--no-install-recommends`) when running as
/// root, or fails naming the exact command to run.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let install = format!(
        "apt-get install -y --allow-downgrades --no-install-recommends {}",
        packages.join(" ")
    );
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !is_root || !has_command("apt-get") {
        return Err(anyhow!(
            "missing {}; run: sudo apt-get update && sudo {install}",
            packages.join(" ")
        ));
    }
    println!("    installing {}: {install}", packages.join(" "));
    let ok = Command::new("sh")
        .args([
            "-c",
            &format!("apt-get update -qq && DEBIAN_FRONTEND=noninteractive {install}"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(anyhow!("`{install}` failed"))
    }
}

/// Whether `cmd` is on the PATH.
pub fn has_command(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}
