// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The tree's Rust build rules, shown to fail where they must.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Cache;
use super::config;
use super::run::output;
use anyhow::{Context as _, Result, ensure};

/// The tree's check must reject an object with an unprovable index.
pub fn check_rejects_panics(cache: &Cache, tree: &Path) -> Result<()> {
    let dir = cache.root.join("probe");
    fs::create_dir_all(&dir)?;
    let (src, obj) = (dir.join("panicky.rs"), dir.join("panicky.o"));
    let code = "#![no_std]\n#[unsafe(no_mangle)]\npub extern \"C\" fn gmem_kmap_init(x: &[u8; 4], i: usize) -> u8 {\n    x[i]\n}\n";
    fs::write(&src, code)?;
    let mut rustc = Command::new("rustc");
    rustc.args(["--edition=2024", "-O", "-Cpanic=abort", "--crate-type=lib"]);
    rustc.args(["--target=x86_64-unknown-none", "-Crelocation-model=static"]);
    output(rustc.arg(&src).arg(format!("--emit=obj={}", obj.display())))?;
    let check_script = tree.join("arch/x86/mm/gmem_kmap_check.sh");
    let allowed_undefined = tree.join("arch/x86/mm/gmem_kmap/src/ffi/undefined-symbols");
    let mut check = Command::new("sh");
    check.arg(check_script).args(["nm", "readelf"]);
    let checked = output(check.arg(&obj).arg(allowed_undefined));
    let said = format!("{:#}", checked.err().context("the probe passed the check")?);
    // The probe's own symbol, not the script's fixed "(a panic path?)".
    let ours = said.contains("panic_bounds_check");
    ensure!(ours, "rejected for another reason: {said}");
    println!("    rejected as it should be: {said}");
    Ok(())
}

/// With a rustc whose `--sysroot` lacks the target, `GMEM_KMAP` must be unset.
pub fn hidden_without_target(cache: &Cache, tree: &Path) -> Result<()> {
    let print = |what| output(Command::new("rustc").args(["--print", what]));
    let real = PathBuf::from(print("sysroot")?.trim());
    let host_lib = format!("lib/rustlib/{}", print("host-tuple")?.trim());
    let dir = cache.root.join("notarget");
    let sysroot = dir.join("sysroot");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(sysroot.join("lib/rustlib"))?;
    // The host's libraries only (rustc finds its own through its RUNPATH).
    let (from, to) = (real.join(&host_lib), sysroot.join(&host_lib));
    std::os::unix::fs::symlink(&from, &to).with_context(|| format!("ln -s {from:?} {to:?}"))?;
    let (wrapper, s) = (dir.join("rustc"), sysroot.display());
    let script = format!("#!/bin/sh\nexec rustc --sysroot={s} \"$@\"\n");
    fs::write(&wrapper, script)?;
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))?;
    let probe = ["--target=x86_64-unknown-none", "--print", "target-libdir"];
    let libdir = output(Command::new(&wrapper).args(probe))?;
    let libdir = libdir.trim();
    let has_target = fs::read_dir(libdir).is_ok_and(|mut d| d.next().is_some());
    ensure!(!has_target, "sysroot still has the target: {libdir}");
    let rustc = format!("RUSTC={}", wrapper.display());
    let config = config::configure_with(cache, tree, "notarget", &[rustc])?;
    let set = |sym: &str| config.lines().any(|l| l == format!("CONFIG_{sym}=y"));
    let offered = set("GMEM_KMAP_TOOLCHAIN") || set("GMEM_KMAP");
    ensure!(!offered, "GMEM_KMAP offered without the Rust target");
    println!("    rustc without x86_64-unknown-none: GMEM_KMAP hidden, as it should be");
    Ok(())
}
