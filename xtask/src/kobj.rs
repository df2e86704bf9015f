// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The core as the kernel links it: one relocatable object for
//! `x86_64-unknown-none`, and a check that it needs nothing the kernel
//! does not provide.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, root};

/// Code-generation flags every kernel build needs: kernel code model (the
/// target's default), no PIC, no unwind tables, no bitcode, no jump tables
/// (objtool cannot follow them), no red zone and soft-float (the target's
/// defaults).
pub const KERNEL_RUSTFLAGS: &str = "-Crelocation-model=static -Cpanic=abort -Cforce-unwind-tables=n -Cembed-bitcode=n -Cjump-tables=n";

/// Symbols the object may leave for the kernel to resolve.
const ALLOWED_UNDEFINED: &[&str] = &[
    "gmem_kmap_hw_set_pte",
    "gmem_kmap_hw_clear_pte",
    "gmem_kmap_hw_read_pte",
    "gmem_kmap_hw_flush_local",
    "gmem_kmap_hw_direct_map_set",
    "gmem_kmap_hw_flush_all",
    // The compiler's own calls; lib/string.c and arch/x86/lib provide them.
    "memset",
    "memcpy",
    "memmove",
    "memcmp",
];

/// Entry points the object must define.
const REQUIRED_DEFINED: &[&str] = &[
    "gmem_kmap_init",
    "gmem_kmap_map",
    "gmem_kmap_unmap",
    "gmem_kmap_sched_out",
    "gmem_kmap_sched_in",
    "gmem_kmap_fork",
    "gmem_kmap_exit",
    "gmem_kmap_slot_addr",
    "gmem_reinsert_map",
    "gmem_reinsert_unmap",
];

/// Where the object goes.
pub fn object_path() -> PathBuf {
    root().join("target/kobj/gmem_kmap_core.o")
}

/// Builds the object.
pub fn build() -> Result<PathBuf, String> {
    let obj = object_path();
    let status = cargo()
        .args([
            "rustc",
            "--quiet",
            "--lib",
            "--release",
            "--features",
            "ffi",
        ])
        .args([
            "--target",
            "x86_64-unknown-none",
            "--target-dir",
            "target/kobj",
        ])
        .arg("--")
        .arg(format!("--emit=obj={}", obj.display()))
        .env("RUSTFLAGS", KERNEL_RUSTFLAGS)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(
            "cargo rustc for x86_64-unknown-none failed (rustup target add x86_64-unknown-none?)"
                .into(),
        );
    }
    Ok(obj)
}

/// Fails unless every undefined symbol is allowed and every entry point is
/// defined.
pub fn check_symbols(obj: &Path) -> Result<(), String> {
    let undefined = nm(obj, &["--undefined-only"])?;
    let stray: Vec<&String> = undefined
        .iter()
        .filter(|s| !ALLOWED_UNDEFINED.contains(&s.as_str()))
        .collect();
    let defined = nm(obj, &["--defined-only", "--extern-only"])?;
    let missing: Vec<&&str> = REQUIRED_DEFINED
        .iter()
        .filter(|s| !defined.iter().any(|d| d == *s))
        .collect();
    let mut problems = Vec::new();
    if !stray.is_empty() {
        problems.push(format!(
            "undefined symbols outside the allowlist (a panic path?): {stray:?}"
        ));
    }
    if !missing.is_empty() {
        problems.push(format!("entry points missing: {missing:?}"));
    }
    if problems.is_empty() {
        println!(
            "    {} undefined, all allowed: {undefined:?}",
            undefined.len()
        );
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Builds the object and checks it.
pub fn build_and_check() -> Result<PathBuf, String> {
    let obj = build()?;
    check_symbols(&obj)?;
    Ok(obj)
}

/// The symbol names `nm args obj` lists.
fn nm(obj: &Path, args: &[&str]) -> Result<Vec<String>, String> {
    let out = Command::new("nm")
        .args(args)
        .arg(obj)
        .output()
        .map_err(|e| format!("cannot run nm (binutils): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "nm failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(String::from))
        .collect())
}

/// The check must fail on code that can panic: an indexing that the
/// compiler cannot prove in bounds leaves `core::panicking` undefined.
pub fn check_rejects_panics() -> Result<(), String> {
    let dir = root().join("target/kobj");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (src, obj) = (dir.join("panicky.rs"), dir.join("panicky.o"));
    let code = "#![no_std]\n#[unsafe(no_mangle)]\npub extern \"C\" fn gmem_kmap_init(x: &[u8; 4], i: usize) -> u8 {\n    x[i]\n}\n";
    std::fs::write(&src, code).map_err(|e| e.to_string())?;
    let status = Command::new("rustc")
        .args([
            "--edition=2024",
            "--crate-type=lib",
            "--target=x86_64-unknown-none",
            "-O",
        ])
        .args(KERNEL_RUSTFLAGS.split_whitespace())
        .arg(format!("--emit=obj={}", obj.display()))
        .arg(&src)
        .status()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    if !status.success() {
        return Err("rustc could not build the probe".into());
    }
    match check_symbols(&obj) {
        Err(why) if why.contains("panic") => {
            println!("    rejected as it should be: {why}");
            Ok(())
        }
        Err(why) => Err(format!("rejected for the wrong reason: {why}")),
        Ok(()) => Err("an object with a panic path passed the symbol check".into()),
    }
}
