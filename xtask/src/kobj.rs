// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The core as the kernel links it: one relocatable object for
//! `x86_64-unknown-none`, and checks that the kernel can link it as it is:
//! no symbol the kernel does not provide (above all no panic path), no GOT
//! relocation (vmlinux refuses GOT entries), no section the kernel's linker
//! script would treat as an orphan.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, root};

/// Code-generation flags every kernel build needs: kernel code model (the
/// target's default), no PIC, no unwind tables, no bitcode, no jump tables
/// (objtool cannot follow them), direct calls rather than GOT loads for the
/// compiler's own `memset`-style calls (`-Zplt=yes`), and one `.text`
/// rather than a section per function. No red zone and soft-float are the
/// target's defaults. The `-Z` flags need `RUSTC_BOOTSTRAP=1`, as the
/// kernel's own Rust build does; the mitigation flags a given kernel config
/// needs are added by Kbuild.
pub const KERNEL_RUSTFLAGS: &str = "-Crelocation-model=static -Cpanic=abort -Cforce-unwind-tables=n \
     -Cembed-bitcode=n -Cjump-tables=n -Zplt=yes -Zfunction-sections=n";

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

/// Sections the kernel's linker script places (plus the object's own
/// bookkeeping). Anything else, e.g. `.text.<fn>`, would be an orphan.
const ALLOWED_SECTIONS: &[&str] = &[
    "",
    ".text",
    ".rodata",
    ".data",
    ".bss",
    ".comment",
    ".note.GNU-stack",
    ".note.gnu.property",
    "__patchable_function_entries",
    ".symtab",
    ".strtab",
    ".shstrtab",
];

/// Relocation types a non-PIC kernel object may carry.
const ALLOWED_RELOCATIONS: &[&str] = &[
    "R_X86_64_PC32",
    "R_X86_64_PLT32",
    "R_X86_64_32S",
    "R_X86_64_32",
    "R_X86_64_64",
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
        .env("RUSTC_BOOTSTRAP", "1")
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

/// Every check on a built object; the problems found, joined.
pub fn check(obj: &Path) -> Result<(), String> {
    let undefined = words(&tool("nm", &["--undefined-only"], obj)?);
    let defined = words(&tool("nm", &["--defined-only", "--extern-only"], obj)?);
    let sections = section_names(&tool("readelf", &["-SW"], obj)?);
    let relocations = relocation_types(&tool("readelf", &["-rW"], obj)?);
    let problems = problems(&undefined, &defined, &sections, &relocations);
    if problems.is_empty() {
        println!("    undefined, all allowed: {undefined:?}");
        println!("    sections: {sections:?}");
        println!("    relocation types: {relocations:?}");
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn problems(
    undefined: &[String],
    defined: &[String],
    sections: &[String],
    relocations: &[String],
) -> Vec<String> {
    let not_in = |list: &[&str], items: &[String]| -> Vec<String> {
        items
            .iter()
            .filter(|s| !list.contains(&s.as_str()))
            .cloned()
            .collect()
    };
    let mut problems = Vec::new();
    let stray = not_in(ALLOWED_UNDEFINED, undefined);
    if !stray.is_empty() {
        problems.push(format!(
            "undefined symbols outside the allowlist (a panic path?): {stray:?}"
        ));
    }
    let missing: Vec<&&str> = REQUIRED_DEFINED
        .iter()
        .filter(|s| !defined.iter().any(|d| d == *s))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("entry points missing: {missing:?}"));
    }
    let orphans = not_in(ALLOWED_SECTIONS, sections);
    // Relocations go with their section; `RO_DATA` places every `.rodata.*`.
    let placed = |s: &&String| s.starts_with(".rela") || s.starts_with(".rodata.");
    let orphans: Vec<&String> = orphans.iter().filter(|s| !placed(s)).collect();
    if !orphans.is_empty() {
        problems.push(format!(
            "sections the kernel's linker script does not place: {orphans:?}"
        ));
    }
    let bad_relocations = not_in(ALLOWED_RELOCATIONS, relocations);
    if !bad_relocations.is_empty() {
        problems.push(format!(
            "relocations a kernel link refuses (GOT entries?): {bad_relocations:?}"
        ));
    }
    problems
}

/// Builds the object and checks it.
pub fn build_and_check() -> Result<PathBuf, String> {
    let obj = build()?;
    check(&obj)?;
    Ok(obj)
}

/// Runs a binutils tool on `obj`.
fn tool(name: &str, args: &[&str], obj: &Path) -> Result<String, String> {
    let out = Command::new(name)
        .args(args)
        .arg(obj)
        .output()
        .map_err(|e| format!("cannot run {name} (binutils): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last word of each line of `nm` output (the symbol name).
fn words(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().last().map(String::from))
        .collect()
}

/// Section names from `readelf -SW`: the word after `[ N]`.
fn section_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (head, rest) = l.trim_start().strip_prefix('[')?.split_once(']')?;
            head.trim().parse::<u32>().ok()?;
            let name = rest.split_whitespace().next().unwrap_or("");
            // `[ 0]` is the null section: its first word is its type.
            Some(if name == "NULL" {
                String::new()
            } else {
                name.to_string()
            })
        })
        .collect()
}

/// Distinct relocation types from `readelf -rW`.
fn relocation_types(text: &str) -> Vec<String> {
    let mut types: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|t| t.starts_with("R_X86_64_"))
        .map(String::from)
        .collect();
    types.sort();
    types.dedup();
    types
}

/// The checks must fail on code that can panic: an indexing the compiler
/// cannot prove in bounds leaves `core::panicking` undefined.
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
        .env("RUSTC_BOOTSTRAP", "1")
        .status()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    if !status.success() {
        return Err("rustc could not build the probe".into());
    }
    match check(&obj) {
        Err(why) if why.contains("panic") => {
            println!("    rejected as it should be: {why}");
            Ok(())
        }
        Err(why) => Err(format!("rejected for the wrong reason: {why}")),
        Ok(()) => Err("an object with a panic path passed the check".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READELF_S: &str = "\
There are 8 section headers, starting at offset 0x1fb8:

Section Headers:
  [Nr] Name              Type            Address          Off    Size   ES Flg Lk Inf Al
  [ 0]                   NULL            0000000000000000 000000 000000 00      0   0  0
  [ 1] .strtab           STRTAB          0000000000000000 001af0 0004c5 00      0   0  1
  [ 2] .text             PROGBITS        0000000000000000 000040 000c86 00  AX  0   0 16
  [ 3] .rela.text        RELA            0000000000000000 000fb0 000b40 18   I  7   2  8
  [ 4] .text.gmem_kmap_map PROGBITS      0000000000000000 000cc8 000038 00  AX  0   0  8
";

    const READELF_R: &str = "\
Relocation section '.rela.text' at offset 0xfb0 contains 2 entries:
    Offset             Info             Type               Symbol's Value  Symbol's Name + Addend
0000000000000011  0000000600000004 R_X86_64_PLT32         0000000000000000 gmem_kmap_hw_read_pte - 4
0000000000000052  0000000900000029 R_X86_64_GOTPCRELX     0000000000000000 memset - 4
";

    #[test]
    fn finds_orphan_sections_and_got_relocations() {
        let sections = section_names(READELF_S);
        assert_eq!(
            sections,
            ["", ".strtab", ".text", ".rela.text", ".text.gmem_kmap_map"]
        );
        let relocations = relocation_types(READELF_R);
        assert_eq!(relocations, ["R_X86_64_GOTPCRELX", "R_X86_64_PLT32"]);
        let defined: Vec<String> = REQUIRED_DEFINED.iter().map(|s| s.to_string()).collect();
        let found = problems(&["memset".into()], &defined, &sections, &relocations);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains(".text.gmem_kmap_map"));
        assert!(found[1].contains("R_X86_64_GOTPCRELX"));
    }
}
