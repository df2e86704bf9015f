// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Two checks of how the patched tree builds the Rust core, each shown to
//! fail where it must:
//! - the tree's object check (`arch/x86/mm/gmem_kmap_check.sh`, which Kbuild
//!   runs on the core's object) rejects an object with a panic path;
//! - Kconfig hides `GMEM_KMAP` when rustc lacks the `x86_64-unknown-none`
//!   target (`GMEM_KMAP_TOOLCHAIN`, in the manner of `RUST_IS_AVAILABLE`),
//!   so that allyesconfig and randconfig cannot ask for a build that fails.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::Cache;
use super::config;
use super::run::output;
use anyhow::{Context as _, Result, anyhow, bail};

/// The tree's object check and the allowlist it reads.
const CHECK_SCRIPT: &str = "arch/x86/mm/gmem_kmap_check.sh";
const ALLOWED_UNDEFINED: &str = "arch/x86/mm/gmem_kmap/src/ffi/undefined-symbols";

/// Builds an object whose only function can panic (an index the compiler
/// cannot prove in bounds) and runs the tree's check on it: it must fail,
/// naming the panic path.
pub fn check_rejects_panics(cache: &Cache, tree: &Path) -> Result<()> {
    let dir = cache.root.join("probe");
    fs::create_dir_all(&dir)?;
    let (src, obj) = (dir.join("panicky.rs"), dir.join("panicky.o"));
    let code = "#![no_std]\n#[unsafe(no_mangle)]\npub extern \"C\" fn gmem_kmap_init(x: &[u8; 4], i: usize) -> u8 {\n    x[i]\n}\n";
    fs::write(&src, code)?;
    output(
        Command::new("rustc")
            .args([
                "--edition=2024",
                "--crate-type=lib",
                "--target=x86_64-unknown-none",
            ])
            .args(["-O", "-Cpanic=abort", "-Crelocation-model=static"])
            .arg(format!("--emit=obj={}", obj.display()))
            .arg(&src),
    )?;
    let out = Command::new("sh")
        .arg(tree.join(CHECK_SCRIPT))
        .args(["nm", "readelf"])
        .arg(&obj)
        .arg(tree.join(ALLOWED_UNDEFINED))
        .output()
        .with_context(|| format!("cannot run {CHECK_SCRIPT}"))?;
    let said = String::from_utf8_lossy(&out.stderr);
    // The probe's own symbol, not the script's fixed "(a panic path?)".
    match (out.status.success(), said.contains("panic_bounds_check")) {
        (false, true) => {
            println!("    rejected as it should be: {}", said.trim());
            Ok(())
        }
        (false, false) => Err(anyhow!("rejected for another reason: {}", said.trim())),
        (true, _) => Err(anyhow!("an object with a panic path passed the check")),
    }
}

/// Configures the boot fragment with a rustc whose sysroot lacks the
/// `x86_64-unknown-none` target (a wrapper passing `--sysroot`): Kconfig
/// must leave `GMEM_KMAP` unset, and with it everything that depends on it.
pub fn hidden_without_target(cache: &Cache, tree: &Path) -> Result<()> {
    let dir = cache.root.join("notarget");
    let sysroot = dir.join("sysroot");
    let real = output(Command::new("rustc").args(["--print", "sysroot"]))?;
    let real = Path::new(real.trim());
    let host = output(Command::new("rustc").args(["--print", "host-tuple"]))?;
    let _ = fs::remove_dir_all(&dir);
    let rustlib = sysroot.join("lib/rustlib");
    fs::create_dir_all(&rustlib)?;
    // The host's libraries and the compiler's own, not the bare-metal target.
    for entry in fs::read_dir(real.join("lib"))? {
        let entry = entry?;
        if entry.file_name() != "rustlib" {
            symlink(&entry.path(), &sysroot.join("lib").join(entry.file_name()))?;
        }
    }
    let host_lib = real.join("lib/rustlib").join(host.trim());
    symlink(&host_lib, &rustlib.join(host.trim()))?;
    let wrapper = dir.join("rustc");
    let script = format!(
        "#!/bin/sh\nexec rustc --sysroot={} \"$@\"\n",
        sysroot.display()
    );
    fs::write(&wrapper, script)?;
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))?;
    let probe = Command::new(&wrapper)
        .args(["--target=x86_64-unknown-none", "--print", "target-libdir"])
        .output()?;
    let libdir = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    if Path::new(&libdir).join("libcore.rlib").exists()
        || fs::read_dir(&libdir).is_ok_and(|mut d| d.next().is_some())
    {
        bail!("the wrapper's sysroot still has the target at {libdir}");
    }
    let rustc = format!("RUSTC={}", wrapper.display());
    let config = config::configure_with(cache, tree, "boot", "notarget", &[rustc])?;
    let set = |sym: &str| config.lines().any(|l| l == format!("{sym}=y"));
    println!(
        "    rustc without x86_64-unknown-none: CONFIG_GMEM_KMAP_TOOLCHAIN {}, CONFIG_GMEM_KMAP {}, \
         CONFIG_KVM_GMEM_NO_DIRECT_MAP {}",
        state(set("CONFIG_GMEM_KMAP_TOOLCHAIN")),
        state(set("CONFIG_GMEM_KMAP")),
        state(set("CONFIG_KVM_GMEM_NO_DIRECT_MAP")),
    );
    if set("CONFIG_GMEM_KMAP_TOOLCHAIN") || set("CONFIG_GMEM_KMAP") {
        bail!("Kconfig offered GMEM_KMAP without the Rust target");
    }
    Ok(())
}

fn state(on: bool) -> &'static str {
    if on { "=y" } else { "unset" }
}

fn symlink(from: &Path, to: &Path) -> Result<()> {
    std::os::unix::fs::symlink(from, to)
        .with_context(|| format!("ln -s {} {}", from.display(), to.display()))
}
