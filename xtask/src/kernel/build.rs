// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `make` in a configured build directory through ccache, logged to
//! `<cache>/logs/<name>-build.log`; afterwards the log is scanned for
//! warnings the series must not cause.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Cache;
use super::run::{Ended, logged, output, tail};

/// ccache's size limit.
const CCACHE_MAX: &str = "5G";

/// Builds `targets` in `<cache>/build/<name>` and scans the log.
///
/// The command is `make O=<dir> -j<nproc> CC="ccache gcc" HOSTCC="ccache gcc"
/// GMEM_KMAP_CRATE=<repo root> <targets>` run in the source tree, with
/// `CCACHE_DIR=<cache>/ccache`.
pub fn make(cache: &Cache, tree: &Path, name: &str, targets: &[&str]) -> Result<PathBuf, String> {
    let out = cache.build(name);
    let log = cache.log(&format!("{name}-build"));
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut make = Command::new("make");
    make.current_dir(tree)
        .arg(format!("O={}", out.display()))
        .arg(format!("-j{jobs}"))
        .arg("CC=ccache gcc")
        .arg("HOSTCC=ccache gcc")
        .arg(format!("GMEM_KMAP_CRATE={}", crate::root().display()))
        .args(targets);
    ccache(cache, &mut make);
    let _ = output(ccache(cache, Command::new("ccache").arg("-z")));
    println!(
        "    make O={} -j{jobs} {}",
        out.display(),
        targets.join(" ")
    );
    println!("    log: {}", log.display());
    let ended = logged(&mut make, &log, None, is_progress)?;
    print_ccache_stats(cache);
    let text = fs::read(&log).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&text);
    let scan = scan(&text);
    if !scan.objtool.is_empty() {
        println!("    objtool said:");
        for l in &scan.objtool {
            println!("    | {l}");
        }
    } else {
        println!("    objtool: no output");
    }
    match ended {
        Ended::Exited(s) if s.success() => {}
        _ => {
            println!("    last 40 lines of {}:", log.display());
            for line in tail(&log, 40) {
                println!("    | {line}");
            }
            return Err(format!("make failed; log: {}", log.display()));
        }
    }
    if !scan.fatal.is_empty() {
        println!("    warnings that fail the build stage:");
        for l in &scan.fatal {
            println!("    | {l}");
        }
        return Err(format!(
            "{} warning(s) from gmem_kmap, objtool or the linker; log: {}",
            scan.fatal.len(),
            log.display()
        ));
    }
    Ok(out)
}

/// Puts ccache's directory and size limit into `cmd`'s environment.
fn ccache<'a>(cache: &Cache, cmd: &'a mut Command) -> &'a mut Command {
    cmd.env("CCACHE_DIR", cache.root.join("ccache"))
        .env("CCACHE_MAXSIZE", CCACHE_MAX)
}

/// Prints this build's ccache statistics (zeroed before it).
fn print_ccache_stats(cache: &Cache) {
    match output(ccache(cache, Command::new("ccache").arg("-s"))) {
        Ok(stats) => {
            println!("    ccache -s:");
            for l in stats.lines().filter(|l| !l.trim().is_empty()) {
                println!("    | {l}");
            }
        }
        Err(e) => println!("    ccache -s: {e}"),
    }
}

/// Kbuild's short progress lines: `  CC      kernel/fork.o`.
fn is_progress(line: &str) -> bool {
    line.strip_prefix("  ")
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// What the scan of a build log found.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    /// Every line objtool printed (quoted in the report either way).
    pub objtool: Vec<String>,
    /// Lines that fail the stage: warnings mentioning gmem_kmap, objtool
    /// warnings, linker warnings.
    pub fatal: Vec<String>,
}

/// Scans a build log.
pub fn scan(log: &str) -> Scan {
    let mut scan = Scan::default();
    for line in log.lines() {
        let objtool = line.contains("objtool:") || line.contains("vmlinux.o: warning");
        if objtool {
            scan.objtool.push(line.to_string());
        }
        let warning = line.contains("warning:");
        if (warning && (objtool || line.contains("gmem_kmap"))) || line.contains("ld: warning") {
            scan.fatal.push(line.to_string());
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_series_objtool_and_linker_warnings() {
        let log = "\
  CC      mm/memory.o
mm/memory.c:12:5: warning: unused variable 'x' [-Wunused-variable]
arch/x86/mm/gmem_kmap.c:40:3: warning: unused variable 'y' [-Wunused-variable]
vmlinux.o: warning: objtool: gmem_kmap_map+0x12: 'naked' return found in MITIGATION_RETHUNK build
arch/x86/mm/gmem_kmap_core.o: warning: objtool: .text+0x40: data relocation to !ENDBR: foo+0x0
ld: warning: arch/x86/boot/compressed/vmlinux has a LOAD segment with RWX permissions
  OBJTOOL vmlinux.o
";
        let s = scan(log);
        assert_eq!(s.objtool.len(), 2);
        assert_eq!(s.fatal.len(), 4, "{:?}", s.fatal);
        assert!(s.fatal[0].contains("gmem_kmap.c"));
        assert!(s.fatal[3].starts_with("ld: warning"));
        assert!(is_progress("  CC      mm/memory.o"));
        assert!(!is_progress("mm/memory.c:12:5: warning"));
    }
}
