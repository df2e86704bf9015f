// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `make` in a configured build directory through ccache, logged to
//! `<cache>/logs/<name>-build.log`; afterwards the log is scanned for
//! warnings the series must not cause.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Cache;
use super::run::{Ended, logged, output, tail};
use anyhow::{Result, anyhow};

/// ccache's size limit.
const CCACHE_MAX: &str = "5G";

/// Builds `targets` in `<cache>/build/<name>` and scans the log.
///
/// The command is `make O=<dir> -j<nproc> CC="ccache gcc" HOSTCC="ccache gcc"
/// <targets>` run in the source tree, with `CCACHE_DIR=<cache>/ccache`: the
/// tree carries the Rust core and its dependencies, so nothing outside it
/// is named.
pub fn make(cache: &Cache, tree: &Path, name: &str, targets: &[&str]) -> Result<PathBuf> {
    let out = cache.build(name);
    let log = cache.log(&format!("{name}-build"));
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut make = Command::new("make");
    make.current_dir(tree)
        .arg(format!("O={}", out.display()))
        .arg(format!("-j{jobs}"))
        .arg("CC=ccache gcc")
        .arg("HOSTCC=ccache gcc")
        .args(targets);
    // This build's own ccache statistics go to a log of their own, so
    // other builds sharing the cache neither skew nor reset them.
    let stats = cache.log(&format!("{name}-ccache-stats"));
    let _ = fs::remove_file(&stats);
    ccache(cache, &mut make).env("CCACHE_STATSLOG", &stats);
    println!(
        "    make O={} -j{jobs} {}",
        out.display(),
        targets.join(" ")
    );
    println!("    log: {}", log.display());
    let ended = logged(&mut make, &log, None, is_progress)?;
    print_ccache_stats(cache, &stats);
    let text = fs::read(&log)?;
    let text = String::from_utf8_lossy(&text);
    let scan = scan(&text, &tree.display().to_string());
    for obj in &scan.stale {
        // Rebuilt next time, so its warnings are printed again.
        let _ = fs::remove_file(out.join(obj));
    }
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
            return Err(anyhow!("make failed; log: {}", log.display()));
        }
    }
    if !scan.fatal.is_empty() {
        println!("    warnings that fail the build stage:");
        for l in &scan.fatal {
            println!("    | {l}");
        }
        return Err(anyhow!(
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

/// Prints this build's ccache statistics (from its stats log) and the
/// cache's size.
fn print_ccache_stats(cache: &Cache, stats: &Path) {
    let mut show = Command::new("ccache");
    show.arg("--show-log-stats").env("CCACHE_STATSLOG", stats);
    let mut size = Command::new("ccache");
    size.arg("-s");
    println!("    ccache, this build:");
    for cmd in [&mut show, &mut size] {
        match output(ccache(cache, cmd)) {
            Ok(text) => {
                for l in text.lines().filter(|l| !l.trim().is_empty()) {
                    if cmd.get_args().any(|a| a == "-s") && !l.contains("Cache size") {
                        continue;
                    }
                    println!("    | {l}");
                }
            }
            Err(e) => println!("    | {e:#}"),
        }
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
    /// warnings, linker warnings, rustc warnings.
    pub fatal: Vec<String>,
    /// Objects (relative to the build directory) whose build gave a fatal
    /// warning: removed, so that the next make rebuilds them and says it
    /// again rather than passing on an up-to-date tree.
    pub stale: Vec<String>,
}

/// Scans a build log; `tree` is the source tree's path as the compiler
/// prints it.
pub fn scan(log: &str, tree: &str) -> Scan {
    let mut scan = Scan::default();
    let lines: Vec<&str> = log.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let objtool = line.contains("objtool:") || line.contains("vmlinux.o: warning");
        if objtool {
            scan.objtool.push(line.to_string());
        }
        let warning = line.contains("warning:");
        let ours = line.contains("gmem_kmap") || line.contains("gmem-kmap");
        // rustc: `warning: ...` then ` --> src/x.rs:1:2`.
        let rustc = line.starts_with("warning: ")
            && lines
                .get(i + 1)
                .is_some_and(|n| n.trim_start().starts_with("--> "));
        let linker = line.contains("ld: warning");
        if !((warning && (objtool || ours)) || linker || rustc) {
            continue;
        }
        scan.fatal.push(line.to_string());
        let stale = if linker {
            Some("vmlinux.o".to_string())
        } else if let Some((obj, _)) = line.split_once(": warning: objtool:") {
            Some(obj.to_string())
        } else {
            // `<tree>/dir/file.c:8:13: warning:`, or a header's warning
            // after `In file included from <tree>/dir/file.c:3:`.
            let source = |l: &str| {
                let path = l
                    .trim_start_matches("In file included from ")
                    .split(':')
                    .next()?;
                let rel = path.strip_prefix(tree)?.trim_start_matches('/');
                let stem = rel.strip_suffix(".c").or_else(|| rel.strip_suffix(".S"))?;
                Some(format!("{stem}.o"))
            };
            source(line).or_else(|| {
                lines[i.saturating_sub(20)..i]
                    .iter()
                    .rev()
                    .find(|l| l.starts_with("In file included from "))
                    .and_then(|l| source(l))
            })
        };
        if let Some(obj) = stale
            && !scan.stale.contains(&obj)
        {
            scan.stale.push(obj);
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_series_objtool_linker_and_rustc_warnings() {
        let log = "\
  CC      mm/memory.o
/t/linux/mm/memory.c:12:5: warning: unused variable 'x' [-Wunused-variable]
/t/linux/arch/x86/mm/gmem_kmap.c:40:3: warning: unused variable 'y' [-Wunused-variable]
In file included from /t/linux/mm/gmem.c:3:
/t/linux/include/linux/gmem_kmap.h:7:1: warning: no previous prototype [-Wmissing-prototypes]
vmlinux.o: warning: objtool: gmem_kmap_map+0x12: 'naked' return found in MITIGATION_RETHUNK build
arch/x86/mm/gmem_kmap_core.o: warning: objtool: .text+0x40: data relocation to !ENDBR: foo+0x0
ld: warning: arch/x86/boot/compressed/vmlinux has a LOAD segment with RWX permissions
warning: unused variable: `z`
  --> src/ffi.rs:10:9
  OBJTOOL vmlinux.o
";
        let s = scan(log, "/t/linux");
        assert_eq!(s.objtool.len(), 2);
        assert_eq!(s.fatal.len(), 6, "{:?}", s.fatal);
        assert!(s.fatal[0].contains("gmem_kmap.c"));
        assert!(s.fatal[4].starts_with("ld: warning"));
        assert!(s.fatal[5].starts_with("warning: unused variable"));
        assert_eq!(
            s.stale,
            [
                "arch/x86/mm/gmem_kmap.o",
                "mm/gmem.o",
                "vmlinux.o",
                "arch/x86/mm/gmem_kmap_core.o"
            ]
        );
        assert!(is_progress("  CC      mm/memory.o"));
        assert!(!is_progress("mm/memory.c:12:5: warning"));
    }
}
