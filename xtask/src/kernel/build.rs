// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `make` through ccache, its log scanned for warnings the series must not cause.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Cache;
use super::ktap::read_log;
use super::run::{logged, output};
use anyhow::{Result, ensure};

/// Builds `targets` in `<cache>/build/<name>` and scans the log.
pub fn make(cache: &Cache, tree: &Path, name: &str, targets: &[&str]) -> Result<PathBuf> {
    let (out, log) = (cache.build(name), cache.log(&format!("{name}-build")));
    // This build's own ccache statistics: other builds neither skew nor reset them.
    let stats = cache.log(&format!("{name}-ccache-stats"));
    let _ = fs::remove_file(&stats);
    let ccache = [
        ("CCACHE_DIR", cache.root.join("ccache")),
        ("CCACHE_MAXSIZE", "5G".into()),
        ("CCACHE_STATSLOG", stats),
    ];
    let mut make = super::run::make(tree);
    make.arg(format!("O={}", out.display())).args(targets);
    make.args(["CC=ccache gcc", "HOSTCC=ccache gcc"]);
    // Judged after the scan, which sees a failed build's warnings too.
    let made = logged(make.envs(ccache.clone()), &log, None);
    let stats = output(Command::new("ccache").arg("--show-log-stats").envs(ccache));
    println!("    ccache, this build:");
    let stats = stats.unwrap_or_else(|e| format!("{e:#}"));
    stats.lines().for_each(|l| println!("    | {l}"));
    let scan = scan(&read_log(&log)?, &tree.display().to_string());
    for obj in &scan.stale {
        // Rebuilt next time, so its warnings are printed again.
        let _ = fs::remove_file(out.join(obj));
    }
    println!("    objtool: {} line(s)", scan.objtool.len());
    scan.objtool.iter().for_each(|l| println!("    | {l}"));
    made?;
    let (n, shown) = (scan.fatal.len(), log.display());
    scan.fatal.iter().for_each(|l| println!("    fatal: {l}"));
    ensure!(n == 0, "{n} warning(s) that fail the stage; log: {shown}");
    Ok(out)
}

/// A build log's objtool lines, the lines that fail the stage, their objects.
#[derive(Debug, Default)]
struct Scan {
    objtool: Vec<String>,
    fatal: Vec<String>,
    stale: Vec<String>,
}

/// The object of `<tree>/d/f.c:8:13: warning:`, `In file included from <tree>/d/f.c:3:`.
fn object(line: &str, tree: &str) -> Option<String> {
    let line = line.trim_start_matches("In file included from ");
    let path = line.split(':').next()?.strip_prefix(tree)?;
    let rel = path.trim_start_matches('/');
    let stem = rel.strip_suffix(".c").or_else(|| rel.strip_suffix(".S"))?;
    Some(format!("{stem}.o"))
}

/// Scans a build log for warnings naming gmem_kmap, objtool's, ld's, rustc's.
fn scan(log: &str, tree: &str) -> Scan {
    let mut scan = Scan::default();
    let lines: Vec<&str> = log.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let objtool = line.contains("objtool:") || line.contains("vmlinux.o: warning");
        if objtool {
            scan.objtool.push(line.to_string());
        }
        let ours = line.contains("gmem_kmap") || line.contains("gmem-kmap");
        // rustc: `warning: ...` then ` --> src/x.rs:1:2`.
        let next = lines.get(i + 1).map(|n| n.trim_start());
        let rustc = line.starts_with("warning: ") && next.is_some_and(|n| n.starts_with("--> "));
        let linker = line.contains("ld: warning");
        if !((line.contains("warning:") && (objtool || ours)) || linker || rustc) {
            continue;
        }
        scan.fatal.push(line.to_string());
        let earlier = lines[i.saturating_sub(20)..i].iter().rev();
        let mut included = earlier.filter(|l| l.starts_with("In file included from "));
        let stale = match line.split_once(": warning: objtool:") {
            _ if linker => Some("vmlinux.o".to_string()),
            Some((obj, _)) => Some(obj.to_string()),
            None => object(line, tree).or_else(|| object(included.next()?, tree)),
        };
        if let Some(obj) = stale.filter(|o| !scan.stale.contains(o)) {
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
        let s = scan(include_str!("build-warnings.log"), "/t/linux");
        assert_eq!(s.objtool.len(), 2);
        assert_eq!(s.fatal.len(), 6, "{:?}", s.fatal);
        assert!(s.fatal[0].contains("gmem_kmap.c"));
        assert!(s.fatal[4].starts_with("ld: warning"));
        assert!(s.fatal[5].starts_with("warning: unused variable"));
        let objects = "arch/x86/mm/gmem_kmap.o mm/gmem.o vmlinux.o arch/x86/mm/gmem_kmap_core.o";
        assert_eq!(s.stale.join(" "), objects);
    }
}
