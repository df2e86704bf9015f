// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Instructions per map + unmap pair with no-op hardware, counted by
//! valgrind (cachegrind, no cache simulation): exact and repeatable, unlike
//! time. `cargo bench --bench instructions`.
//!
//! The bench runs itself twice per depth under valgrind, with N and 2N pairs;
//! the difference divided by N is the cost of one pair, with start-up and
//! set-up cancelled out. The same loop with the pair left out (only the
//! `black_box` traffic and the loop counter) is measured the same way and
//! reported as the harness's share.

mod common;

use std::hint::black_box;
use std::process::Command;

use common::{NoopHw, stack_at, window};
use gmem_kmap::frame_from_pfn;

const CHILD_ENV: &str = "GMEM_KMAP_BENCH_PAIRS";
const PAIRS: u64 = 20_000;
/// The budget the core must stay within (issue: ≤ 50 per pair).
const BUDGET: f64 = 50.0;

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let mut spec = spec.split(',');
        let mut next = || {
            spec.next()
                .expect("pairs,depth,work")
                .parse::<u64>()
                .unwrap()
        };
        let (pairs, depth, work) = (next(), next() as usize, next() == 1);
        run_pairs(pairs, depth, work);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks; there is nothing to list.
    }
    println!(
        "instructions per map+unmap pair (window, no-op hardware, valgrind --tool=cachegrind)"
    );
    println!("| depth | whole loop | harness only | core (difference) |");
    println!("|---:|---:|---:|---:|");
    let mut worst: f64 = 0.0;
    for depth in 1..=16 {
        let whole = per_iteration(depth, true);
        let harness = per_iteration(depth, false);
        let core = whole - harness;
        worst = worst.max(core);
        println!("| {depth} | {whole:.1} | {harness:.1} | {core:.1} |");
    }
    let verdict = if worst <= BUDGET { "within" } else { "OVER" };
    println!(
        "worst {worst:.1} instructions per pair in the core: {verdict} the budget of {BUDGET}"
    );
}

/// Instructions per loop iteration, from runs of N and 2N iterations.
fn per_iteration(depth: usize, work: bool) -> f64 {
    let once = instructions(PAIRS, depth, work);
    let twice = instructions(2 * PAIRS, depth, work);
    (twice as f64 - once as f64) / PAIRS as f64
}

/// `pairs` map+unmap pairs at `depth`; with `work` false, the same loop
/// without the pair.
#[inline(never)]
fn run_pairs(pairs: u64, depth: usize, work: bool) {
    let window = window();
    let mut stack = stack_at(&window, depth);
    let frame = frame_from_pfn(0x1234).unwrap();
    let slot = window.slot_addr(0, depth - 1).unwrap();
    for _ in 0..pairs {
        let frame = black_box(frame);
        if work {
            let addr = window.map(&mut NoopHw, &mut stack, 0, frame).unwrap();
            window
                .unmap(&mut NoopHw, &mut stack, 0, black_box(addr))
                .unwrap();
        } else {
            black_box(slot);
        }
    }
}

/// Instructions this binary executes for `pairs` pairs at `depth`.
fn instructions(pairs: u64, depth: usize, work: bool) -> u64 {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new("valgrind")
        .args([
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
        ])
        .arg(&exe)
        .env(CHILD_ENV, format!("{pairs},{depth},{}", u8::from(work)))
        .output()
        .expect("valgrind is installed (apt-get install valgrind)");
    assert!(
        out.status.success(),
        "valgrind failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("I refs:") || l.contains("I   refs:"))
        .unwrap_or_else(|| panic!("no instruction count in valgrind's output:\n{stderr}"));
    line.rsplit(':')
        .next()
        .unwrap()
        .trim()
        .replace(',', "")
        .parse()
        .expect("a number")
}
