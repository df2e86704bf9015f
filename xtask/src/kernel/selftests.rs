// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The test programs the series carries under `tools/testing/selftests/`,
//! built static against the build's own uapi headers (`make headers`) and
//! run by the initramfs' `/init` as `/tests/<name>`. Each prints kselftest
//! TAP, judged as the suite `selftest <name>` (see [`super::ktap`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::run::output;

/// The programs, as paths in the tree; one that the series does not (yet)
/// carry is left out with a note.
pub const PROGRAMS: &[&str] =
    &["tools/testing/selftests/kvm/x86_64/guest_memfd_no_direct_map_test.c"];

/// The suite name the boot verdict gives a program's TAP.
#[cfg(test)]
fn suite(program: &str) -> String {
    format!("selftest {}", stem(program))
}

fn stem(program: &str) -> &str {
    let file = program.rsplit('/').next().unwrap_or(program);
    file.strip_suffix(".c").unwrap_or(file)
}

/// Builds every program present in `tree` into `<build>/selftests/`, with
/// `<build>/usr/include` from `make headers`; returns (guest path, binary).
pub fn build(tree: &Path, build: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let include = build.join("usr/include");
    if !include.join("linux/kvm.h").exists() {
        return Err(format!(
            "{} has no uapi headers: `make headers` did not run",
            build.display()
        ));
    }
    let out_dir = build.join("selftests");
    fs::create_dir_all(&out_dir).map_err(|e| format!("create {}: {e}", out_dir.display()))?;
    let mut built = Vec::new();
    for program in PROGRAMS {
        let src = tree.join(program);
        if !src.exists() {
            println!("    {program}: not in the series, left out");
            continue;
        }
        let bin = out_dir.join(stem(program));
        // Warnings fail the stage, as they fail the kernel build.
        output(
            Command::new("gcc")
                .args(["-static", "-O2", "-Wall", "-Wextra", "-Werror"])
                .arg(format!("-I{}", include.display()))
                .arg(format!(
                    "-I{}",
                    tree.join("tools/testing/selftests").display()
                ))
                .arg("-o")
                .arg(&bin)
                .arg(&src),
        )?;
        println!("    {program} -> {}", bin.display());
        built.push((format!("/tests/{}", stem(program)), bin));
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_is_an_expected_suite() {
        for p in PROGRAMS {
            assert!(
                super::super::EXPECTED_SUITES.contains(&suite(p).as_str()),
                "{p}"
            );
        }
    }

    #[test]
    fn suite_names() {
        assert_eq!(
            suite("tools/testing/selftests/kvm/x86_64/guest_memfd_no_direct_map_test.c"),
            "selftest guest_memfd_no_direct_map_test"
        );
    }
}
