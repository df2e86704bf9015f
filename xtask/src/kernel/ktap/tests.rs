// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The judgements of the fixture logs beside this file, each read plain, with
//! `\r\n` (QEMU's serial line) and with timestamps, as `expected.txt` lists
//! them; kunit.py is in the kernel tree `cargo xtask test` unpacks first.

use std::path::Path;

use super::*;

/// `log` plain, with `\r\n` line ends, and with a timestamp on each line.
fn variants(log: &str) -> [String; 3] {
    let plain = log.replace('\r', "");
    let crlf = plain.replace('\n', "\r\n");
    let stamp = |(i, line)| format!("[    1.{i:06}] {line}\n");
    let stamped = plain.lines().enumerate().map(stamp).collect();
    [plain, crlf, stamped]
}

/// Each section of `expected.txt`: `== <log> <4|5 paging> <expected suites,
/// comma-separated; - none; script: a benchmark script's boot>`, then the
/// problems, one a line; `== <log> - kunit.py`, then kunit.py's suites and
/// their results' count; `== <log> - fault`, then the window's outcome;
/// `== <log> - upstream`, then upstream's false positive if it is one (only
/// whole, and before the series' code starts).
#[test]
fn each_log_has_the_problems_expected_txt_lists() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kernel/ktap");
    for section in include_str!("expected.txt").split("\n== ").skip(1) {
        let (head, want) = section.split_once('\n').unwrap_or((section, ""));
        let [file, depth, suites] = head.splitn(3, ' ').collect::<Vec<_>>()[..] else {
            panic!("bad section head `{head}`");
        };
        let four = depth == "4";
        let paging = if four { Paging::Four } else { Paging::Five };
        let expected: Vec<String> = suites.split(',').map(String::from).collect();
        let log = std::fs::read_to_string(dir.join(file)).unwrap();
        for log in variants(&log) {
            let upstream = upstream_false_positive(&log).map(String::from);
            let got = match suites {
                "kunit.py" => kunit(&log).map(|(suites, _)| {
                    let count = |s: &Node| format!("{}: {}", s.name, s.results().len());
                    suites.iter().map(count).collect()
                }),
                "fault" => Ok(vec![match window_fault_outcome(&log) {
                    Ok(outcome) => format!("{outcome:?}"),
                    Err(e) => format!("error: {e}"),
                }]),
                "upstream" => Ok(Vec::from_iter(upstream)),
                "script" => problems(&log, paging, None).map(|p| p.0),
                "-" => problems(&log, paging, Some(&[])).map(|p| p.0),
                _ => problems(&log, paging, Some(&expected)).map(|p| p.0),
            };
            assert_eq!(got.unwrap().join("\n"), want.trim_end(), "{head}");
        }
    }
    let empty = verdict_of(Path::new("/dev/null"), Paging::Five, None).unwrap_err();
    assert!(empty.to_string().contains("QEMU never started"), "{empty}");
}
