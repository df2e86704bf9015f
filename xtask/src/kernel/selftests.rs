// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The KVM selftests of the series, built static; a test's TAP is the suite `selftest <name>`.

use super::ktap::read_log;
use super::run::logged;
use anyhow::{Result, ensure};
use std::path::{Path, PathBuf};

/// The programs (`x86_64/<name>.c`) and their guest directory: `/init` runs
/// `/tests/*` at every boot, scripts `/bin/*` when they ask.
pub const PROGRAMS: &[(&str, &str)] = &[
    ("guest_memfd_no_direct_map_test", "/tests"),
    ("guest_memfd_no_direct_map_input_test", "/tests"),
    ("guest_memfd_no_direct_map_stress_test", "/tests"),
    ("guest_memfd_no_direct_map_fault_test", DEBUG_TESTS),
    ("guest_memfd_no_direct_map_bench", "/bin"),
    ("guest_memfd_populate_bench", "/bin"),
];

/// The debug kernel's own tests, which its initramfs puts under `/tests/`.
pub const DEBUG_TESTS: &str = "/debug-tests";

/// The selftests' directory whose Makefile builds the programs.
const KVM_SELFTESTS: &str = "tools/testing/selftests/kvm";

/// The warnings in a build's output (the linker's too).
fn warnings(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("warning:")).collect()
}

/// Builds the programs present into `<build>/selftests/`: (guest path, binary).
pub fn build(tree: &Path, build: &Path) -> Result<Vec<(String, PathBuf)>> {
    let include = build.join("usr/include");
    let out = build.join("selftests");
    let mut built = Vec::new();
    for &(name, dir) in PROGRAMS {
        let src = format!("{KVM_SELFTESTS}/x86_64/{name}.c");
        match tree.join(&src).exists() {
            true => built.push((format!("{dir}/{name}"), out.join("x86_64").join(name))),
            false => println!("    {src}: not in the series, left out"),
        }
    }
    if built.is_empty() {
        return Ok(built);
    }
    let mut make = super::run::make(tree);
    let output = format!("OUTPUT={}", out.display());
    make.args(["-C", KVM_SELFTESTS, "EXTRA_CFLAGS=-Werror"]);
    make.args(["LDFLAGS=-static", &output]);
    make.arg(format!("KHDR_INCLUDES=-isystem {}", include.display()));
    let log = super::Cache::from_env().log("selftests-build");
    logged(make.args(built.iter().map(|(_, bin)| bin)), &log, None)?;
    // Warnings fail the stage, as they fail the kernel build.
    let text = read_log(&log)?;
    let found = warnings(&text);
    found.iter().for_each(|l| println!("    | {l}"));
    let n = found.len();
    ensure!(n == 0, "{n} warning(s) building the selftests");
    for (guest, bin) in &built {
        ensure!(bin.is_file(), "make did not build {}", bin.display());
        println!("    {} ({guest})", bin.display());
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tests_are_expected_suites_and_warnings_are_found() {
        for &(name, dir) in PROGRAMS {
            let suite = format!("selftest {name}");
            let expected = super::super::EXPECTED_SUITES.contains(&suite.as_str());
            assert_eq!(expected, dir == "/tests", "{name}");
        }
        let text = "gcc -c x.c\nx.c:1:2: warning: unused variable 'a'\n\
                    /usr/bin/ld: warning: y.o: missing .note.GNU-stack section\nmake: done\n";
        assert_eq!(warnings(text).len(), 2);
    }
}
