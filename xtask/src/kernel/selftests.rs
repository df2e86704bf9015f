// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The programs the series carries under `tools/testing/selftests/kvm/`,
//! built with the selftests' own Makefile, static, against the build's own
//! uapi headers (`make headers`). A test is run by the initramfs' `/init` as
//! `/tests/<name>` and prints kselftest TAP, judged as the suite `selftest
//! <name>` (see [`super::ktap`]); a tool goes to `/bin/<name>`, where only a
//! script that asks for it runs it (the benchmark boots, [`super::boot_script`]).

use anyhow::{Context as _, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a program is for, which decides where the initramfs puts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Run by `/init` at every boot: `/tests/<name>`.
    Test,
    /// Run only when asked for: `/bin/<name>`.
    Tool,
    /// Run by the debug kernel's `/init` only (it needs fault injection):
    /// `/debug-tests/<name>`, which that initramfs puts under `/tests/`.
    DebugTest,
}

/// The programs, as sources in the tree; one that the series does not (yet)
/// carry is left out with a note.
pub const PROGRAMS: &[(&str, Role)] = &[
    (
        "tools/testing/selftests/kvm/x86_64/guest_memfd_no_direct_map_test.c",
        Role::Test,
    ),
    (
        "tools/testing/selftests/kvm/x86_64/guest_memfd_no_direct_map_input_test.c",
        Role::Test,
    ),
    (
        "tools/testing/selftests/kvm/x86_64/guest_memfd_no_direct_map_stress_test.c",
        Role::Test,
    ),
    (
        "tools/testing/selftests/kvm/x86_64/guest_memfd_no_direct_map_fault_test.c",
        Role::DebugTest,
    ),
    (
        "tools/testing/selftests/kvm/x86_64/guest_memfd_no_direct_map_bench.c",
        Role::Tool,
    ),
    (
        "tools/testing/selftests/kvm/x86_64/guest_memfd_populate_bench.c",
        Role::Tool,
    ),
];

/// Where a [`Role::DebugTest`] program is in the list of built programs.
pub const DEBUG_TESTS: &str = "/debug-tests";

/// The selftests' directory whose Makefile builds the programs.
const KVM_SELFTESTS: &str = "tools/testing/selftests/kvm";

/// The suite name the boot verdict gives a program's TAP.
#[cfg(test)]
fn suite(program: &str) -> String {
    format!("selftest {}", stem(program))
}

fn stem(program: &str) -> &str {
    let file = program.rsplit('/').next().unwrap_or(program);
    file.strip_suffix(".c").unwrap_or(file)
}

/// The make target of `program` (a source under [`KVM_SELFTESTS`]): the
/// binary under `out`, at the source's path in the selftests' directory.
fn target(out: &Path, program: &str) -> PathBuf {
    let rel = program
        .strip_prefix(KVM_SELFTESTS)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or(program);
    out.join(rel.strip_suffix(".c").unwrap_or(rel))
}

/// Where `role` puts a program called `name` in the guest.
fn guest_path(role: Role, name: &str) -> String {
    match role {
        Role::Test => format!("/tests/{name}"),
        Role::Tool => format!("/bin/{name}"),
        Role::DebugTest => format!("{DEBUG_TESTS}/{name}"),
    }
}

/// The make command building `targets` into `out` with the headers of
/// `include`: static, and any compiler warning an error, as in the kernel
/// build.
fn make_command(tree: &Path, out: &Path, include: &Path, targets: &[PathBuf]) -> Command {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut make = Command::new("make");
    make.current_dir(tree)
        .arg("-C")
        .arg(KVM_SELFTESTS)
        .arg(format!("OUTPUT={}", out.display()))
        .arg(format!("KHDR_INCLUDES=-isystem {}", include.display()))
        .arg("LDFLAGS=-static")
        .arg("EXTRA_CFLAGS=-Werror")
        .arg(format!("-j{jobs}"))
        .args(targets);
    make
}

/// The lines of a build's output that are warnings (the linker's, which
/// `-Werror` does not reach, among them).
fn warnings(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("warning:")).collect()
}

/// Builds every program present in `tree` into `<build>/selftests/`, with
/// `<build>/usr/include` from `make headers`; returns (guest path, binary).
pub fn build(tree: &Path, build: &Path) -> Result<Vec<(String, PathBuf)>> {
    let include = build.join("usr/include");
    if !include.join("linux/kvm.h").exists() {
        bail!(
            "{} has no uapi headers: `make headers` did not run",
            build.display()
        );
    }
    let out = build.join("selftests");
    fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let mut present = Vec::new();
    for &(program, role) in PROGRAMS {
        if tree.join(program).exists() {
            present.push((program, role));
        } else {
            println!("    {program}: not in the series, left out");
        }
    }
    if present.is_empty() {
        return Ok(Vec::new());
    }
    let targets: Vec<PathBuf> = present.iter().map(|(p, _)| target(&out, p)).collect();
    let mut make = make_command(tree, &out, &include, &targets);
    println!(
        "    make -C {KVM_SELFTESTS} OUTPUT={} KHDR_INCLUDES=\"-isystem {}\" LDFLAGS=-static EXTRA_CFLAGS=-Werror",
        out.display(),
        include.display()
    );
    let done = make
        .output()
        .with_context(|| format!("cannot run make in {KVM_SELFTESTS}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&done.stdout),
        String::from_utf8_lossy(&done.stderr)
    );
    if !done.status.success() {
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines[lines.len().saturating_sub(40)..] {
            println!("    | {line}");
        }
        bail!("make in {KVM_SELFTESTS} failed ({})", done.status);
    }
    // Warnings fail the stage, as they fail the kernel build.
    let found = warnings(&text);
    if !found.is_empty() {
        for line in &found {
            println!("    | {line}");
        }
        bail!("{} warning(s) building the selftests", found.len());
    }
    let mut built = Vec::new();
    for ((program, role), bin) in present.into_iter().zip(targets) {
        if !bin.exists() {
            bail!("make did not build {}", bin.display());
        }
        let guest = guest_path(role, stem(program));
        println!("    {program} -> {} ({guest})", bin.display());
        built.push((guest, bin));
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_is_an_expected_suite_and_no_tool_is() {
        for &(p, role) in PROGRAMS {
            let expected = super::super::EXPECTED_SUITES.contains(&suite(p).as_str());
            assert_eq!(expected, role == Role::Test, "{p}");
        }
    }

    #[test]
    fn suite_names() {
        assert_eq!(
            suite("tools/testing/selftests/kvm/x86_64/guest_memfd_no_direct_map_test.c"),
            "selftest guest_memfd_no_direct_map_test"
        );
    }

    #[test]
    fn only_tests_go_where_init_runs_them() {
        assert_eq!(
            guest_path(Role::Test, "guest_memfd_no_direct_map_test"),
            "/tests/guest_memfd_no_direct_map_test"
        );
        assert_eq!(
            guest_path(Role::Tool, "guest_memfd_no_direct_map_bench"),
            "/bin/guest_memfd_no_direct_map_bench"
        );
    }

    #[test]
    fn the_make_command_is_static_werror_and_names_the_binaries() {
        let out = Path::new("/cache/build/boot/selftests");
        let targets = [target(
            out,
            "tools/testing/selftests/kvm/x86_64/guest_memfd_no_direct_map_test.c",
        )];
        assert_eq!(
            targets[0],
            Path::new("/cache/build/boot/selftests/x86_64/guest_memfd_no_direct_map_test")
        );
        let make = make_command(
            Path::new("/cache/linux"),
            out,
            Path::new("/cache/build/boot/usr/include"),
            &targets,
        );
        let args: Vec<String> = make
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        for want in [
            "-C",
            "tools/testing/selftests/kvm",
            "OUTPUT=/cache/build/boot/selftests",
            "KHDR_INCLUDES=-isystem /cache/build/boot/usr/include",
            "LDFLAGS=-static",
            "EXTRA_CFLAGS=-Werror",
            "/cache/build/boot/selftests/x86_64/guest_memfd_no_direct_map_test",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} not in {args:?}");
        }
        assert_eq!(make.get_current_dir(), Some(Path::new("/cache/linux")));
    }

    #[test]
    fn warnings_are_found_in_the_output() {
        let text = "gcc -c x.c\nx.c:1:2: warning: unused variable 'a'\n\
                    /usr/bin/ld: warning: y.o: missing .note.GNU-stack section\nmake: done\n";
        assert_eq!(warnings(text).len(), 2);
        assert!(warnings("gcc -c x.c\n").is_empty());
    }
}
