// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Wall time of one map + unmap pair with no-op hardware: the core's own
//! cost, at every nesting depth. `cargo bench --bench map_unmap`.

mod common;

use common::{Cpu0, NoopHw, stack_at, window};
use divan::{Bencher, black_box};
use gmem_kmap::{PinCurrentCpu, Reinsert, frame_from_pfn};

fn main() {
    divan::main();
}

const DEPTHS: [usize; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

/// Window: map at the next slot, unmap it.
#[divan::bench(args = DEPTHS)]
fn window_pair(bencher: Bencher, depth: usize) {
    let window = window();
    let cpu = Cpu0::new();
    let stack = stack_at(&window, &cpu, depth);
    let frame = frame_from_pfn(0x1234).unwrap();
    bencher.bench_local(|| {
        let slot = window
            .map(&mut NoopHw, &stack, cpu.pin(), black_box(frame))
            .unwrap();
        window
            .unmap(&mut NoopHw, &stack, cpu.pin(), black_box(slot.addr()))
            .unwrap();
    });
}

/// Re-insertion: first user in, last user out (the hardware is a no-op,
/// so this is only its bookkeeping; the shootdown is what it really costs).
#[divan::bench]
fn reinsert_pair(bencher: Bencher) {
    let reinsert = Reinsert::new(*window().template());
    let frame = frame_from_pfn(0x1234).unwrap();
    let mut users = 0;
    bencher.bench_local(|| {
        reinsert
            .map(&mut NoopHw, black_box(frame), &mut users)
            .unwrap();
        reinsert
            .unmap(&mut NoopHw, black_box(frame), &mut users)
            .unwrap();
    });
}
