// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Hardware events per access, window vs re-insertion, from 1 to 256 CPUs.
//!
//! Drives the real core (`Window`, `SlotStack`, `Reinsert`) against the
//! simulated MMU (`gmem_kmap::sim`): every CPU in turn maps its own frame,
//! reads 64 bytes through the mapping, and unmaps. The event counts are
//! measured by the simulator; the nanoseconds are an ESTIMATE from a cost
//! MODEL built on published per-event figures (see [`model_ns`]), not a
//! measurement.
//!
//! `cargo bench --features sim --bench sim_sweep [-- --tsv]`

use std::fmt::Debug;

use gmem_kmap::sim::{Counters, Machine, OnCpu};
use gmem_kmap::{PagingDepth, PinnedCpu, Reinsert, SlotStack};

const CPU_COUNTS: [u32; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];
/// Accesses per CPU.
const ACCESSES: usize = 64;
/// Bytes read per access.
const READ_LEN: usize = 64;

/// Cost model, from the project's notes. A single-page INVLPG (local flush)
/// is ≈100 ns (kernel commit a5102476a24b; Molnar 2015 gives ≈260 cycles).
/// Nadav Amit (2019, Haswell) measured MADV_DONTNEED + touch at 661 ns with
/// no remote CPU, 1436 ns with one and 1571 ns with three.
const LOCAL_FLUSH_NS: f64 = 100.0;
/// The first remote CPU's IPI round trip, as seen by the initiator: 1436 - 661.
const FIRST_REMOTE_NS: f64 = 1436.0 - 661.0;
/// Each further remote CPU: (1571 - 1436) / 2. Measured up to three remote
/// CPUs only; extrapolated linearly beyond.
const EXTRA_REMOTE_NS: f64 = (1571.0 - 1436.0) / 2.0;
/// The remote CPU's own interrupt and flush (interrupt entry/exit unpriced,
/// so the machine-wide figure is a lower bound).
const REMOTE_HANDLER_NS: f64 = LOCAL_FLUSH_NS;
/// PTE writes (slot or direct map): no published figure; a cached store is
/// small against a flush, so they are counted but priced at 0.
const PTE_WRITE_NS: f64 = 0.0;

/// Counter deltas divided by the number of accesses.
#[derive(Clone, Copy, Debug)]
struct PerAccess {
    slot_pte_writes: f64,
    direct_map_writes: f64,
    local_flushes: f64,
    global_flushes: f64,
    ipis: f64,
}

impl PerAccess {
    fn new(before: Counters, after: Counters, accesses: usize) -> Self {
        let per = |a: u64, b: u64| (a - b) as f64 / accesses as f64;
        Self {
            slot_pte_writes: per(after.slot_pte_writes, before.slot_pte_writes),
            direct_map_writes: per(after.direct_map_writes, before.direct_map_writes),
            local_flushes: per(after.local_flushes, before.local_flushes),
            global_flushes: per(after.global_flushes, before.global_flushes),
            ipis: per(after.ipis, before.ipis),
        }
    }
}

/// Estimated ns per access: (time on the initiating CPU, CPU time across the
/// machine). A global flush on `nr_cpus` CPUs has `nr_cpus - 1` remote CPUs.
fn model_ns(c: &PerAccess, nr_cpus: u32) -> (f64, f64) {
    let remote = f64::from(nr_cpus.saturating_sub(1));
    let shootdown = LOCAL_FLUSH_NS
        + if remote >= 1.0 {
            FIRST_REMOTE_NS + EXTRA_REMOTE_NS * (remote - 1.0)
        } else {
            0.0
        };
    let initiator = (c.slot_pte_writes + c.direct_map_writes) * PTE_WRITE_NS
        + c.local_flushes * LOCAL_FLUSH_NS
        + c.global_flushes * shootdown;
    (initiator, initiator + c.ipis * REMOTE_HANDLER_NS)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Strategy {
    Window,
    Reinsert,
}

/// Runs `ACCESSES` accesses per CPU, round-robin, each CPU on its own frame.
/// The counts do not depend on the paging depth; the machine is 5-level.
fn sweep(strategy: Strategy, nr_cpus: u32) -> PerAccess {
    let n = nr_cpus as usize;
    let mut machine = Machine::new(PagingDepth::Five, nr_cpus, n);
    for pfn in 0..n {
        let frame = machine.frame(pfn);
        for (i, b) in machine.frame_bytes_mut(frame).iter_mut().enumerate() {
            *b = (pfn * 31 + i) as u8;
        }
    }
    let window = machine.window();
    let reinsert = Reinsert::new(machine.template());
    let stacks: Vec<SlotStack> = (0..n).map(|_| SlotStack::new()).collect();
    let mut users = vec![0u32; n];
    let mut buf = [0u8; READ_LEN];
    let before = machine.counters();
    for _ in 0..ACCESSES {
        for cpu in 0..nr_cpus {
            let (c, frame) = (cpu as usize, machine.frame(cpu as usize));
            let fail = |step: &str, e: &dyn Debug| -> String {
                format!("{strategy:?}, cpu {cpu} of {nr_cpus}: {step} failed: {e:?}")
            };
            let on = OnCpu::new(cpu);
            let addr = match strategy {
                Strategy::Window => window
                    .map(&mut machine.cpu(cpu), &stacks[c], PinnedCpu::of(&on), frame)
                    .map(|slot| slot.addr()),
                Strategy::Reinsert => reinsert
                    .map(&mut machine.cpu(cpu), frame, &mut users[c])
                    .map(|()| machine.direct_map_addr(frame)),
            };
            let addr = addr.unwrap_or_else(|e| panic!("{}", fail("map", &e)));
            let read = machine.read(cpu, addr, &mut buf);
            read.unwrap_or_else(|e| panic!("{}", fail("read", &e)));
            let unmapped = match strategy {
                Strategy::Window => {
                    window.unmap(&mut machine.cpu(cpu), &stacks[c], PinnedCpu::of(&on), addr)
                }
                Strategy::Reinsert => reinsert.unmap(&mut machine.cpu(cpu), frame, &mut users[c]),
            };
            unmapped.unwrap_or_else(|e| panic!("{}", fail("unmap", &e)));
            assert!(
                buf[..] == machine.frame_bytes(frame)[..READ_LEN],
                "{strategy:?}, cpu {cpu} of {nr_cpus}: read returned another frame's bytes"
            );
        }
    }
    assert!(stacks.iter().all(SlotStack::is_empty) && users.iter().all(|&u| u == 0));
    PerAccess::new(before, machine.counters(), ACCESSES * n)
}

const HEADER: [&str; 9] = [
    "strategy",
    "cpus",
    "slot_pte_writes",
    "direct_map_writes",
    "local_flushes",
    "global_flushes",
    "ipis",
    "model_initiator_ns",
    "model_machine_ns",
];

/// One line: tab-separated, or right-aligned under the header.
fn print_row(cells: &[String], tsv: bool) {
    if tsv {
        return println!("{}", cells.join("\t"));
    }
    let padded = cells
        .iter()
        .zip(HEADER)
        .enumerate()
        .map(|(i, (c, h))| match i {
            0 => format!("{c:<w$}", w = h.len()),
            _ => format!("{c:>w$}", w = h.len()),
        });
    println!("{}", padded.collect::<Vec<_>>().join("  "));
}

/// Up to three decimals, trailing zeros dropped.
fn num(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn main() {
    let mut tsv = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--tsv" => tsv = true,
            a if a.starts_with("--bench") => {}
            a => {
                eprintln!("unknown argument {a:?}; usage: sim_sweep [--tsv]");
                std::process::exit(2);
            }
        }
    }
    if !tsv {
        println!(
            "Events per access on the simulated MMU ({ACCESSES} accesses per CPU, {READ_LEN}-byte reads)."
        );
        println!("The *_ns columns are an ESTIMATE from a cost MODEL, not a measurement.");
    }
    print_row(&HEADER.map(String::from), tsv);
    for (strategy, name) in [
        (Strategy::Window, "window"),
        (Strategy::Reinsert, "reinsert"),
    ] {
        for nr_cpus in CPU_COUNTS {
            let c = sweep(strategy, nr_cpus);
            let (init, mach) = model_ns(&c, nr_cpus);
            let mut row = vec![name.to_owned(), nr_cpus.to_string()];
            row.extend([c.slot_pte_writes, c.direct_map_writes, c.local_flushes].map(num));
            row.extend([c.global_flushes, c.ipis, init, mach].map(num));
            print_row(&row, tsv);
        }
    }
    if !tsv {
        println!(
            "Model: local flush {LOCAL_FLUSH_NS} ns; shootdown = {LOCAL_FLUSH_NS} + \
            {FIRST_REMOTE_NS} (1st remote) + {EXTRA_REMOTE_NS} per further remote CPU \
            (linear beyond 3: extrapolated); PTE writes {PTE_WRITE_NS} ns; machine_ns adds \
            {REMOTE_HANDLER_NS} ns per IPI (lower bound)."
        );
    }
}
