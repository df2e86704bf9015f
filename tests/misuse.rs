// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Arbitrary calls, most of them wrong: the core never panics, a failed call
//! changes nothing (page table, TLBs, the task's stack, the counters), and a
//! successful one keeps the stack within its bounds. At both paging depths.

use gmem_kmap::sim::{AddressMap, Machine, OnCpu};
use gmem_kmap::{
    CpuId, Error, KernelAddr, PagingDepth, PinnedCpu, Pte, SLOTS_PER_CPU, SlotStack, Window,
    frame_from_pfn,
};
use proptest::prelude::*;

const NR_CPUS: u32 = 3;
const TASKS: usize = 3;

#[derive(Clone, Debug)]
enum Call {
    Map { task: usize, cpu: u32, pfn: u64 },
    Unmap { task: usize, cpu: u32, addr: Addr },
    SchedOut { task: usize, cpu: u32 },
    SchedIn { task: usize, cpu: u32 },
    Exit { task: usize, cpu: u32 },
    Fork { task: usize },
}

/// An address to unmap: near the window, or anywhere.
#[derive(Clone, Copy, Debug)]
enum Addr {
    /// This many bytes above a page below the window's base.
    Near(u64),
    Wild(u64),
}

impl Addr {
    fn resolve(self, depth: PagingDepth) -> u64 {
        match self {
            Addr::Near(off) => AddressMap::of(depth).window_base() - 4096 + off,
            Addr::Wild(addr) => addr,
        }
    }
}

/// CPUs around the valid range; pfns small, at the width's edge, or wild;
/// addresses in and around the window, or anywhere.
fn call() -> impl Strategy<Value = Call> {
    let task = 0..TASKS;
    let cpu = prop_oneof![4 => 0..NR_CPUS, 1 => any::<u32>()];
    let pfn =
        prop_oneof![4 => 0..16u64, 1 => (1u64 << 34) - 2..(1u64 << 34) + 2, 1 => any::<u64>()];
    let window_len = u64::from(NR_CPUS) * (SLOTS_PER_CPU as u64) * 4096;
    let addr = prop_oneof![
        4 => (0..window_len + 8192).prop_map(Addr::Near),
        1 => any::<u64>().prop_map(Addr::Wild),
    ];
    prop_oneof![
        3 => (task.clone(), cpu.clone(), pfn).prop_map(|(task, cpu, pfn)| Call::Map { task, cpu, pfn }),
        3 => (task.clone(), cpu.clone(), addr).prop_map(|(task, cpu, addr)| Call::Unmap { task, cpu, addr }),
        1 => (task.clone(), cpu.clone()).prop_map(|(task, cpu)| Call::SchedOut { task, cpu }),
        1 => (task.clone(), cpu.clone()).prop_map(|(task, cpu)| Call::SchedIn { task, cpu }),
        1 => (task.clone(), cpu).prop_map(|(task, cpu)| Call::Exit { task, cpu }),
        1 => task.prop_map(|task| Call::Fork { task }),
    ]
}

/// The state a failed call must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    ptes: Vec<Pte>,
    tlbs: Vec<Vec<(u64, u64)>>,
    counters: String,
    stacks: Vec<SlotStack>,
}

fn snapshot(m: &Machine, w: &Window, stacks: &[SlotStack]) -> Snapshot {
    let l = w.layout();
    let ptes = (0..NR_CPUS)
        .flat_map(|c| (0..SLOTS_PER_CPU).map(move |i| (c, i)))
        .map(|(c, i)| m.pte(l.slot_addr(CpuId::new(c), i).unwrap().addr()))
        .collect();
    let tlbs = (0..NR_CPUS)
        .map(|c| {
            let mut e: Vec<_> = m
                .tlb_entries(c)
                .map(|(a, p)| (a.as_u64(), p.bits()))
                .collect();
            e.sort_unstable();
            e
        })
        .collect();
    Snapshot {
        ptes,
        tlbs,
        counters: format!("{:?}", m.counters()),
        stacks: stacks.to_vec(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn misuse_is_an_error_that_changes_nothing(
        five in any::<bool>(),
        calls in proptest::collection::vec(call(), 1..200),
    ) {
        let depth = if five { PagingDepth::Five } else { PagingDepth::Four };
        let mut m = Machine::new(depth, NR_CPUS, 16);
        let w = m.window();
        let stacks = vec![SlotStack::new(); TASKS];
        for call in &calls {
            let before = snapshot(&m, &w, &stacks);
            // The hardware acts for a real CPU; the core is told any CPU.
            let hw_cpu = |cpu: u32| cpu % NR_CPUS;
            let pin = |cpu: u32| OnCpu::new(cpu);
            let result = match *call {
                Call::Map { task, cpu, pfn } => match frame_from_pfn(pfn) {
                    Ok(frame) => w.map(&mut m.cpu(hw_cpu(cpu)), &stacks[task], PinnedCpu::of(&pin(cpu)), frame).map(drop),
                    Err(e) => Err(e),
                },
                // Only kernel addresses reach the core: C's are checked first.
                Call::Unmap { task, cpu, addr } => match KernelAddr::new(addr.resolve(depth), depth) {
                    Ok(addr) => w.unmap(&mut m.cpu(hw_cpu(cpu)), &stacks[task], PinnedCpu::of(&pin(cpu)), addr),
                    Err(_) => continue,
                },
                Call::SchedOut { task, cpu } => w.sched_out(&mut m.cpu(hw_cpu(cpu)), &stacks[task], PinnedCpu::of(&pin(cpu))),
                Call::SchedIn { task, cpu } => w.sched_in(&mut m.cpu(hw_cpu(cpu)), &stacks[task], PinnedCpu::of(&pin(cpu))),
                Call::Exit { task, cpu } => w.release_at_exit(&mut m.cpu(hw_cpu(cpu)), &stacks[task], PinnedCpu::of(&pin(cpu))),
                Call::Fork { task } => {
                    let child = stacks[task].clone();
                    let r = child.reset_for_fork();
                    prop_assert!(child.is_empty());
                    r
                }
            };
            // Exiting with slots held releases them, and says so.
            let releases = matches!(call, Call::Exit { .. }) && result == Err(Error::StackNotEmpty);
            if result.is_err() && !releases {
                prop_assert_eq!(snapshot(&m, &w, &stacks), before, "{:?} failed with {:?} and changed state", call, result);
            }
            for s in &stacks {
                prop_assert!(s.depth() <= SLOTS_PER_CPU);
                if let Some(cpu) = s.cpu() {
                    prop_assert!(cpu.as_u32() < NR_CPUS, "a stack owned by cpu {:?}", cpu);
                }
            }
        }
    }
}
