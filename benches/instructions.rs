// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Instructions per map + unmap pair with no-op hardware, counted by
//! valgrind (cachegrind, no cache simulation): exact and repeatable, unlike
//! time. `cargo bench --bench instructions [--features ffi]`.
//!
//! The bench runs itself twice per loop and depth under valgrind, with N and
//! 2N iterations; the difference divided by N is the cost of one iteration,
//! with start-up and set-up cancelled out. Loops:
//! - `harness`: only the `black_box` traffic and the loop counter;
//! - `core`: the same plus a map+unmap pair through the Rust API;
//! - `c-abi` (with `--features ffi`): a pair through `gmem_kmap_map` /
//!   `gmem_kmap_unmap`, as the kernel calls them: the core stores to a
//!   table of slot entries and calls an empty flush callback (a host
//!   process may not `invlpg`; the kernel's core does it inline).

mod common;

use std::hint::black_box;
use std::process::Command;

use common::{Cpu0, NoopHw, stack_at, window};
use gmem_kmap::{CpuId, PinCurrentCpu, frame_from_pfn};

const CHILD_ENV: &str = "GMEM_KMAP_BENCH_LOOP";
const PAIRS: u64 = 20_000;
/// The budget the core must stay within (issue: ≤ 50 per pair).
const BUDGET: f64 = 50.0;
const PFN: u64 = 0x1234;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Loop {
    Harness,
    Core,
    CAbi,
}

impl Loop {
    fn name(self) -> &'static str {
        match self {
            Loop::Harness => "harness",
            Loop::Core => "core",
            Loop::CAbi => "c-abi",
        }
    }

    fn parse(name: &str) -> Loop {
        [Loop::Harness, Loop::Core, Loop::CAbi]
            .into_iter()
            .find(|l| l.name() == name)
            .expect("a loop name")
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let spec: Vec<&str> = spec.split(',').collect();
        let [pairs, depth, kind] = spec[..] else {
            panic!("pairs,depth,loop")
        };
        run(
            Loop::parse(kind),
            pairs.parse().unwrap(),
            depth.parse().unwrap(),
        );
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks; there is nothing to list.
    }
    let c_abi = cfg!(feature = "ffi");
    println!("instructions per map+unmap pair (no-op hardware, valgrind --tool=cachegrind)");
    print!("| depth | harness only | core + harness | core |");
    println!(
        "{}",
        if c_abi {
            " C ABI + harness | C ABI |"
        } else {
            ""
        }
    );
    println!(
        "|---:|---:|---:|---:|{}",
        if c_abi { "---:|---:|" } else { "" }
    );
    let mut worst: f64 = 0.0;
    for depth in 1..=16 {
        let harness = per_iteration(Loop::Harness, depth);
        let core = per_iteration(Loop::Core, depth);
        worst = worst.max(core - harness);
        print!(
            "| {depth} | {harness:.1} | {core:.1} | {:.1} |",
            core - harness
        );
        if c_abi {
            let abi = per_iteration(Loop::CAbi, depth);
            print!(" {abi:.1} | {:.1} |", abi - harness);
        }
        println!();
    }
    let verdict = if worst <= BUDGET { "within" } else { "OVER" };
    println!(
        "worst {worst:.1} instructions per pair in the core: {verdict} the budget of {BUDGET}"
    );
    if c_abi {
        println!(
            "(the C ABI column includes the PTE stores and one call to an empty flush callback)"
        );
    }
}

/// Instructions per loop iteration, from runs of N and 2N iterations.
fn per_iteration(kind: Loop, depth: usize) -> f64 {
    let once = instructions(kind, PAIRS, depth);
    let twice = instructions(kind, 2 * PAIRS, depth);
    (twice as f64 - once as f64) / PAIRS as f64
}

/// `pairs` iterations of `kind` at `depth`.
#[inline(never)]
fn run(kind: Loop, pairs: u64, depth: usize) {
    if kind == Loop::CAbi {
        c_abi::run(pairs, depth);
        return;
    }
    let window = window();
    let cpu = Cpu0::new();
    let stack = stack_at(&window, &cpu, depth);
    let frame = frame_from_pfn(PFN).unwrap();
    let slot = window.slot_addr(CpuId::new(0), depth - 1).unwrap();
    for _ in 0..pairs {
        let frame = black_box(frame);
        if kind == Loop::Core {
            let slot = window.map(&mut NoopHw, &stack, cpu.pin(), frame).unwrap();
            window
                .unmap(&mut NoopHw, &stack, cpu.pin(), black_box(slot.addr()))
                .unwrap();
        } else {
            black_box(slot);
        }
    }
}

#[cfg(feature = "ffi")]
mod c_abi {
    //! The kernel's path: the exported functions, a table of slot entries
    //! and an empty flush callback (a host process cannot `invlpg`).

    use std::hint::black_box;

    use gmem_kmap::SlotStack;
    use gmem_kmap::ffi::{gmem_kmap_init, gmem_kmap_map, gmem_kmap_unmap};

    #[unsafe(no_mangle)]
    #[inline(never)]
    extern "C" fn gmem_kmap_hw_flush_local(_: u64) {}
    #[unsafe(no_mangle)]
    extern "C" fn gmem_kmap_hw_warn(_: i32) {}
    #[unsafe(no_mangle)]
    extern "C" fn gmem_kmap_hw_direct_map_set(_: u64, _: bool) {}
    #[unsafe(no_mangle)]
    extern "C" fn gmem_kmap_hw_flush_all(_: u64) {}

    pub fn run(pairs: u64, depth: usize) {
        let init = gmem_kmap_init(
            super::common::WINDOW_BASE,
            64,
            0x8000_0000_0000_0163,
            46,
            super::common::LEVELS,
            0,
            false,
        );
        assert_eq!(init, 0);
        let mut ctrl = SlotStack::new();
        let mut addr = 0;
        let mut ptes = [0u64; gmem_kmap::SLOTS_PER_CPU];
        let ptes = ptes.as_mut_ptr();
        let none = std::ptr::null_mut();
        // SAFETY: `ctrl`, `addr` and `ptes` are live locals nothing else
        // references; `ptes` holds `SLOTS_PER_CPU` entries.
        unsafe {
            for pfn in 1..depth as u64 {
                assert_eq!(gmem_kmap_map(&mut ctrl, 0, pfn, 0, ptes, &mut addr), 0);
            }
            for _ in 0..pairs {
                let ret = gmem_kmap_map(&mut ctrl, 0, black_box(super::PFN), 0, ptes, &mut addr);
                debug_assert_eq!(ret, 0);
                let ret = gmem_kmap_unmap(&mut ctrl, 0, black_box(addr), ptes, none);
                debug_assert_eq!(ret, 0);
            }
        }
        assert!(ctrl.depth() == depth - 1);
    }
}

#[cfg(not(feature = "ffi"))]
mod c_abi {
    pub fn run(_: u64, _: usize) {
        unreachable!("built without the ffi feature");
    }
}

/// Instructions the child executes for `pairs` iterations of `kind` at `depth`.
fn instructions(kind: Loop, pairs: u64, depth: usize) -> u64 {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new("valgrind")
        .args([
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
        ])
        .arg(&exe)
        .env(CHILD_ENV, format!("{pairs},{depth},{}", kind.name()))
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
