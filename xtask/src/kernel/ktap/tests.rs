// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The KTAP reader on logs shaped as 6.12 KUnit prints them.

use super::*;

/// Two suites: one passing with a parameterised case, one with a failure,
/// a skip and parameters that fail; console noise in between, `\r\n` line
/// ends as QEMU's serial gives them.
const MIXED: &str = "\
Linux version 6.12.117 (root@host) #1 SMP PREEMPT\r
KTAP version 1\r
1..2\r
    KTAP version 1\r
    # Subtest: gmem_kmap\r
    # module: gmem_kmap_test\r
    1..3\r
    ok 1 map_unmap\r
        KTAP version 1\r
        # Subtest: nested_depths\r
        ok 1 depth 1\r
        ok 2 depth 16\r
    # nested_depths: pass:2 fail:0 skip:0 total:2\r
    ok 2 nested_depths\r
random: crng init done\r
    ok 3 sched_out_in\r
# gmem_kmap: pass:3 fail:0 skip:0 total:3\r
# Totals: pass:4 fail:0 skip:0 total:4\r
ok 1 gmem_kmap\r
    KTAP version 1\r
    # Subtest: other\r
    1..3\r
    # bad: EXPECTATION FAILED at lib/other.c:12\r
    not ok 1 bad\r
    ok 2 later # SKIP needs hardware\r
        KTAP version 1\r
        # Subtest: params\r
        ok 1 p0\r
        not ok 2 p1\r
    # params: pass:1 fail:1 skip:0 total:2\r
    not ok 3 params\r
# other: pass:0 fail:2 skip:1 total:3\r
not ok 2 other\r
gmem-kmap: init started\r
gmem-kmap: running /tests/a\r
gmem-kmap: test /tests/a exit 0\r
gmem-kmap: init done\r
";

#[test]
fn nested_and_parameterised() {
    let k = parse(MIXED);
    assert_eq!(k.plan, Some(2));
    assert_eq!(k.suites.len(), 2);
    let g = &k.suites[0];
    assert_eq!(
        (g.name.as_str(), g.status, g.plan),
        ("gmem_kmap", Status::Pass, Some(3))
    );
    assert_eq!(g.children.len(), 3);
    assert_eq!(g.children[1].name, "nested_depths");
    assert_eq!(g.children[1].children.len(), 2);
    assert_eq!(g.children[1].children[1].name, "depth 16");
    let o = &k.suites[1];
    assert_eq!(o.status, Status::Fail);
    assert_eq!(o.children[1].status, Status::Skip);
    assert_eq!(o.children[1].directive, "SKIP needs hardware");
    assert_eq!(o.children[2].children[1].status, Status::Fail);
    assert_eq!(
        rows(&k),
        [
            Row {
                suite: "gmem_kmap".into(),
                passed: 3,
                failed: 0,
                skipped: 0
            },
            Row {
                suite: "other".into(),
                passed: 0,
                failed: 2,
                skipped: 1
            },
        ]
    );
    assert_eq!(k.summaries.len(), 5);
    assert_eq!(k.summaries[2], "# Totals: pass:4 fail:0 skip:0 total:4");
}

#[test]
fn every_failure_is_named() {
    let k = parse(MIXED);
    let p = problems(MIXED, &k, &["gmem_kmap".into(), "other".into()]);
    assert_eq!(
        p,
        [
            "not ok: other",
            "not ok: other.bad",
            "skipped in an expected suite: other.later # SKIP needs hardware",
            "not ok: other.params",
            "not ok: other.params.p1",
        ]
    );
    // A skip outside the expected suites is fine; failures never are.
    let p = problems(MIXED, &k, &["gmem_kmap".into()]);
    assert_eq!(p.len(), 4, "{p:?}");
}

#[test]
fn a_clean_run_has_no_problems() {
    let clean = MIXED
        .split("    KTAP version 1\r\n    # Subtest: other")
        .next()
        .unwrap();
    let clean = format!(
        "{}gmem-kmap: init started\ngmem-kmap: init done\n",
        clean.replace("1..2", "1..1")
    );
    let k = parse(&clean);
    assert_eq!(
        problems(&clean, &k, &["gmem_kmap".into()]),
        Vec::<String>::new()
    );
    assert!(table(&k, &["gmem_kmap".into()]).contains("gmem_kmap*"));
}

#[test]
fn missing_suite_crash_marker_and_cut_short() {
    // Printk timestamps are tolerated; the second suite never reports.
    let log = "\
[    0.812345] KTAP version 1
[    0.812346] 1..2
[    0.812347]     KTAP version 1
[    0.812348]     # Subtest: a
[    0.812349]     1..2
[    0.812350]     ok 1 first
[    0.812351] ok 1 a
[    0.900000]     KTAP version 1
[    0.900001]     # Subtest: b
[    0.900002]     1..1
[    0.900100] BUG: kernel NULL pointer dereference, address: 0000000000000000
[    0.900200] Call Trace:
[    0.900300] Kernel panic - not syncing: Fatal exception
";
    let k = parse(log);
    assert_eq!(k.suites.len(), 1);
    let p = problems(log, &k, &["gmem_kmap".into()]);
    assert_eq!(
        p,
        [
            "a: plan 1..2 but 1 result(s)",
            "KUnit announced 2 suite(s) (1..2), the log has 1 result(s): output cut short?",
            "expected suite `gmem_kmap` is not in the log",
            "kernel said `BUG:`: BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "kernel said `Call Trace:`: Call Trace:",
            "kernel said `Kernel panic`: Kernel panic - not syncing: Fatal exception",
            "/init never ran (no `gmem-kmap: init started`)",
        ]
    );
}

#[test]
fn warnings_and_failed_test_programs() {
    let log = "\
KTAP version 1
1..0
------------[ cut here ]------------
WARNING: CPU: 1 PID: 1 at mm/highmem.c:600 kunmap_local_indexed+0x40/0x80
gmem-kmap: init started
gmem-kmap: test /tests/kvm_probe exit 3
";
    let k = parse(log);
    assert_eq!(
        problems(log, &k, &[]),
        [
            "kernel said `WARNING:`: WARNING: CPU: 1 PID: 1 at mm/highmem.c:600 kunmap_local_indexed+0x40/0x80",
            "initramfs test failed: /tests/kvm_probe exit 3",
            "/init never finished (no `gmem-kmap: init done`)",
        ]
    );
}

#[test]
fn result_lines() {
    assert_eq!(
        result_line("ok 12 - name with spaces # SKIP why"),
        Some((
            Status::Skip,
            12,
            "name with spaces".into(),
            "SKIP why".into()
        ))
    );
    assert_eq!(
        result_line("not ok 3 x"),
        Some((Status::Fail, 3, "x".into(), String::new()))
    );
    assert_eq!(result_line("ok then"), None);
    assert_eq!(result_line("okay 1 x"), None);
}

/// A real boot of plain 6.12.117 with the KUnit example suite (skips,
/// parameters) and the list suites, as QEMU's serial console gave it.
const REAL: &str = include_str!("example-boot.log");

#[test]
fn a_real_boot_log() {
    let k = parse(REAL);
    assert_eq!(k.plan, Some(5));
    let names: Vec<&str> = k.suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "example_init",
            "example",
            "list-kunit-test",
            "hlist",
            "klist"
        ]
    );
    let r = rows(&k);
    assert_eq!(
        r[1],
        Row {
            suite: "example".into(),
            passed: 7,
            failed: 0,
            skipped: 2
        }
    );
    assert_eq!(
        r[2],
        Row {
            suite: "list-kunit-test".into(),
            passed: 39,
            failed: 0,
            skipped: 0
        }
    );
    let params = &k.suites[1].children[7];
    assert_eq!(params.name, "example_params_test");
    assert_eq!(params.children.len(), 4);
    assert_eq!(params.children[3].name, "example value 0");
    assert_eq!(params.children[3].status, Status::Skip);
    assert!(
        k.summaries
            .contains(&"# example: pass:7 fail:0 skip:2 total:9".to_string())
    );
    assert_eq!(
        problems(REAL, &k, &["list-kunit-test".into()]),
        Vec::<String>::new()
    );
    let p = problems(REAL, &k, &["example".into(), "gmem_kmap".into()]);
    assert_eq!(p.len(), 5, "{p:?}");
    assert_eq!(
        p[2],
        "skipped in an expected suite: example.example_params_test.example value 3 # SKIP unsupported param value 3"
    );
    assert_eq!(p[4], "expected suite `gmem_kmap` is not in the log");
}

#[test]
fn a_test_programs_tap_is_its_own_suite() {
    let log = "\
KTAP version 1
1..1
    KTAP version 1
    # Subtest: gmem_kmap
    1..1
    ok 1 round_trip
# gmem_kmap: pass:1 fail:0 skip:0 total:1
ok 1 gmem_kmap
gmem-kmap: init started
gmem-kmap: running /tests/gmnd_test
TAP version 13
1..3
# feature: present
ok 1 window: (a) fetch
not ok 2 reinsert: (a) fetch
ok 3 # SKIP shared: nothing to check
# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
gmem-kmap: test /tests/gmnd_test exit 1
gmem-kmap: init done
";
    let k = parse(log);
    // KUnit's plan still counts KUnit's suites only.
    assert_eq!(k.plan, Some(1));
    assert_eq!(k.suites.len(), 1);
    assert_eq!(k.programs.len(), 1);
    let prog = &k.programs[0];
    assert_eq!(prog.name, "selftest gmnd_test");
    assert_eq!(prog.status, Status::Fail);
    assert_eq!(prog.plan, Some(3));
    assert_eq!(prog.children.len(), 3);
    let expected = ["gmem_kmap".to_string(), "selftest gmnd_test".to_string()];
    let p = problems(log, &k, &expected);
    assert_eq!(
        p,
        vec![
            "not ok: selftest gmnd_test",
            "not ok: selftest gmnd_test.reinsert: (a) fetch",
            "skipped in an expected suite: selftest gmnd_test. # SKIP shared: nothing to check",
            "initramfs test failed: /tests/gmnd_test exit 1",
        ]
    );
    assert!(table(&k, &expected).contains("selftest gmnd_test*"));
}

/// [`MIXED`]'s gmem_kmap suite reporting `depth` after its plan, as the
/// series prints it, with printk timestamps on every line.
fn reporting(depth: &str) -> String {
    let log = MIXED.replacen(
        "    1..3\r\n",
        &format!("    1..3\r\n    # paging: {depth}\r\n"),
        1,
    );
    log.lines()
        .enumerate()
        .map(|(i, l)| format!("[    1.{i:06}] {l}\r\n"))
        .collect()
}

#[test]
fn the_paging_depth_indented_with_a_timestamp() {
    let log = reporting("5-level");
    assert!(log.contains("]     # paging: 5-level\r\n"), "{log}");
    assert_eq!(paging(&log), [5]);
    assert_eq!(paging_problem(&paging(&log), Paging::Five), None);
    // The diagnostic leaves the suite's tree as it was.
    let k = parse(&log);
    assert_eq!(k.suites[0].children.len(), 3);
    assert_eq!(k.suites[0].plan, Some(3));
    assert_eq!(k.summaries.len(), 5);
}

#[test]
fn a_paging_depth_other_than_the_one_asked_for() {
    let log = reporting("4-level");
    assert_eq!(paging(&log), [4]);
    assert_eq!(
        paging_problem(&paging(&log), Paging::Five).as_deref(),
        Some("asked for 5-level paging, the kernel reports 4-level")
    );
    assert_eq!(paging_problem(&paging(&log), Paging::Four), None);
}

#[test]
fn no_paging_depth_or_more_than_one() {
    assert_eq!(paging(MIXED), Vec::<u8>::new());
    assert_eq!(
        paging_problem(&paging(MIXED), Paging::Four).as_deref(),
        Some("no `# paging:` line: the kernel did not report its paging depth")
    );
    let twice = format!(
        "{}    # paging: 5-level\n    # gmem_kmap_case: paging: 4-level\n    # paging: 5-level\n",
        reporting("5-level")
    );
    assert_eq!(paging(&twice), [5, 4], "distinct, in the order first seen");
    assert_eq!(
        paging_problem(&paging(&twice), Paging::Five).as_deref(),
        Some("asked for 5-level paging, the kernel reports more than one depth: 5-level, 4-level")
    );
    // Neither a malformed value nor another diagnostic is a depth.
    assert_eq!(
        paging("    # paging: five\n    # other: 5-level\n# paging_test: ok\n"),
        Vec::<u8>::new()
    );
}

#[test]
fn a_skipped_suite_fails_when_expected() {
    // The whole suite skipped, with its cases and without any.
    for suite in [
        "    KTAP version 1\n    # Subtest: gmem_kmap\n    1..1\n    ok 1 map_unmap # SKIP no LA57\nok 1 gmem_kmap # SKIP no LA57\n",
        "ok 1 gmem_kmap # SKIP no LA57\n",
    ] {
        let log =
            format!("KTAP version 1\n1..1\n{suite}gmem-kmap: init started\ngmem-kmap: init done\n");
        let k = parse(&log);
        assert_eq!(k.suites[0].status, Status::Skip);
        let p = problems(&log, &k, &["gmem_kmap".into()]);
        assert_eq!(
            p.first().map(String::as_str),
            Some("skipped in an expected suite: gmem_kmap # SKIP no LA57"),
            "{p:?}"
        );
        assert!(problems(&log, &k, &[]).is_empty());
    }
}

#[test]
fn a_selftest_skip_fails_when_expected() {
    let log = "\
KTAP version 1
1..0
gmem-kmap: init started
gmem-kmap: running /tests/gmnd_test
TAP version 13
1..3
ok 1 window
ok 2 reinsert
ok 3 # SKIP why
gmem-kmap: test /tests/gmnd_test exit 0
gmem-kmap: init done
";
    let k = parse(log);
    let expected = ["selftest gmnd_test".to_string()];
    assert_eq!(
        problems(log, &k, &expected),
        ["skipped in an expected suite: selftest gmnd_test. # SKIP why"]
    );
    // A program that skips everything (`ksft_exit_skip()` before any test)
    // exits 4 (KSFT_SKIP), which fails it whatever is expected.
    let all = log
        .replace(
            "1..3\nok 1 window\nok 2 reinsert\nok 3 # SKIP why\n",
            "1..0 # SKIP no KVM\n",
        )
        .replace("exit 0", "exit 4");
    assert_eq!(
        problems(&all, &parse(&all), &[]),
        ["initramfs test failed: /tests/gmnd_test exit 4"]
    );
}

/// The report of upstream's KASAN false positive under 5-level paging, as
/// a debug boot printed it (register dump cut).
const UPSTREAM_KASAN: &str = "\
Calibrating delay loop (skipped), value calculated using timer frequency.. 5200.01 BogoMIPS\r
==================================================================\r
BUG: KASAN: wild-memory-access in do_raw_spin_lock+0x10d/0x240\r
Write of size 4 at addr ff110000001728a8 by task swapper/0/0\r
\r
CPU: 0 UID: 0 PID: 0 Comm: swapper/0 Not tainted 6.12.117+ #5 \r
Call Trace:\r
 <IRQ>\r
 kasan_report+0xfe/0x130\r
 do_raw_spin_lock+0x10d/0x240\r
 handle_edge_irq+0x2c/0xbb0\r
 common_interrupt+0xb8/0xe0\r
 </IRQ>\r
 <TASK>\r
 asm_common_interrupt+0x26/0x40\r
RIP: 0010:identify_cpu+0x2b9/0x1c60\r
 arch_cpu_finalize_init+0x5a/0x470\r
 start_kernel+0x286/0x360\r
 </TASK>\r
==================================================================\r
Disabling lock debugging due to kernel taint\r
gmem_kmap: 32 slots for 2 possible CPUs\r
";

#[test]
fn upstream_false_positive_is_recognised_whole() {
    assert!(upstream_false_positive(UPSTREAM_KASAN).is_some());
    // It is still a problem of the boot: a retry is the only leniency.
    assert!(
        problems(UPSTREAM_KASAN, &parse(UPSTREAM_KASAN), &[])
            .iter()
            .any(|p| p.contains("BUG: KASAN: wild-memory-access"))
    );
    // Any part missing, or the report after the series' code started, and
    // it is a finding like any other.
    for (part, instead) in [
        ("identify_cpu", "kvm_gmem_get_pfn"),
        (" <IRQ>", " <TASK>"),
        ("task swapper/0/0", "task stress/113"),
        ("wild-memory-access", "slab-use-after-free"),
    ] {
        let changed = UPSTREAM_KASAN.replace(part, instead);
        assert_eq!(
            upstream_false_positive(&changed),
            None,
            "{part} -> {instead}"
        );
    }
    let late = format!("gmem_kmap: 32 slots for 2 possible CPUs\r\n{UPSTREAM_KASAN}");
    assert_eq!(upstream_false_positive(&late), None);
    let unended = UPSTREAM_KASAN.split("</TASK>").next().unwrap();
    assert_eq!(upstream_false_positive(unended), None);
}
