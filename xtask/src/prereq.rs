// SPDX-License-Identifier: GPL-2.0 OR MIT
//! What a fresh Debian 12 machine lacks, installed or named exactly.

use anyhow::{Context as _, Result, ensure};
use std::process::Command;

/// Installs what is missing, or says exactly how to.
pub fn ensure() -> Result<()> {
    rustup("target", "x86_64-unknown-none")?;
    rustup("component", "rustfmt")?;
    rustup("component", "clippy")?;
    // The Debian packages of the commands the checks run.
    let apt = [("cc", "gcc"), ("nm", "binutils"), ("readelf", "binutils")];
    let missing = apt.iter().filter(|(c, _)| !has_command(c));
    let mut missing: Vec<&str> = missing.map(|(_, pkg)| *pkg).collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)
}

/// `rustup <kind> add <item>` unless `rustup <kind> list --installed` has it.
fn rustup(kind: &str, item: &str) -> Result<()> {
    let listed = Command::new("rustup")
        .args([kind, "list", "--installed"])
        .output();
    let listed = listed.context("rustup not found; install Rust with rustup first")?;
    let text = String::from_utf8_lossy(&listed.stdout);
    if text.lines().any(|l| l.starts_with(item)) {
        return Ok(());
    }
    println!("    installing {item}: rustup {kind} add {item}");
    let added = Command::new("rustup").args([kind, "add", item]).status();
    ensure!(
        added.is_ok_and(|s| s.success()),
        "`rustup {kind} add {item}` failed"
    );
    Ok(())
}

/// Installs `packages` with apt (`--no-install-recommends`) when running as
/// root, or fails naming the exact command to run.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let list = packages.join(" ");
    let install = format!("apt-get install -y --no-install-recommends {list}");
    let uid = Command::new("id").arg("-u").output();
    let root = uid.is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let how = format!("missing {list}; run: sudo apt-get update && sudo {install}");
    ensure!(root && has_command("apt-get"), how);
    println!("    installing {list}: {install}");
    let script = format!("apt-get update -qq && DEBIAN_FRONTEND=noninteractive {install}");
    let ran = Command::new("sh").args(["-c", &script]).status();
    ensure!(ran.is_ok_and(|s| s.success()), "`{install}` failed");
    Ok(())
}

/// Whether `cmd` is on the PATH.
pub fn has_command(cmd: &str) -> bool {
    let script = format!("command -v {cmd} >/dev/null");
    let found = Command::new("sh").args(["-c", &script]).status();
    found.is_ok_and(|s| s.success())
}
