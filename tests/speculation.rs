// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The window under speculation: random sequences over several processes
//! and CPUs, in which any CPU may at any step cache any present translation
//! reachable from the page tables it has loaded, and keep it until flushed.
//!
//! The properties a window for a VM's private pages must keep, checked after
//! every step:
//!
//! - no CPU running another process holds a translation to a page of the
//!   VM's file;
//! - no CPU holds a translation to a page after it has left the file.
//!
//! Today's window keeps its slots in the kernel page table every process
//! shares, mapped global: it cannot keep them. The tests below say so, and
//! stay as the negative test. Slots in page tables of each process's own
//! (`Placement::Private`, the mermap model), mapped
//! without `_PAGE_GLOBAL`, keep both, provided the CPUs running the VM drop
//! the window's translations before a page leaves the file; without either
//! of the two they do not (issue 16).

use gmem_kmap::sim::{Machine, MmId, OnCpu, PAGE_KERNEL, PHYS_BITS};
use gmem_kmap::{PagingDepth, PinnedCpu, Placement, PteTemplate, SlotStack, Window};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use x86_64::structures::paging::PageTableFlags;

const NR_CPUS: u32 = 4;
const NR_MMS: MmId = 3;
/// The VM's process; the others are anyone else (1 is the VM, 0 the kernel).
const VM: MmId = 1;
/// Frames of the VM's file (0..GUEST_FRAMES); the rest are nobody's.
const GUEST_FRAMES: usize = 6;
const NR_FRAMES: usize = 8;

#[derive(Clone, Debug)]
enum Op {
    /// `cpu` switches to process `mm` (the VM task's slots go with it).
    Run { cpu: u8, mm: u8 },
    /// The VM task on `cpu` maps a page of its file.
    Map { cpu: u8, frame: u8 },
    /// The VM task on `cpu` unmaps its most recent mapping.
    Unmap { cpu: u8 },
    /// The VM task on `cpu` reads through one of its mappings.
    Read { cpu: u8, pick: u8 },
    /// `cpu` caches the `nth` translation its page tables reach.
    Speculate { cpu: u8, nth: u8 },
    /// A page leaves the VM's file (a hole punch), unless it is mapped.
    Punch { frame: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let sel = any::<u8>;
    prop_oneof![
        3 => (sel(), sel()).prop_map(|(cpu, mm)| Op::Run { cpu, mm }),
        3 => (sel(), sel()).prop_map(|(cpu, frame)| Op::Map { cpu, frame }),
        2 => sel().prop_map(|cpu| Op::Unmap { cpu }),
        3 => (sel(), sel()).prop_map(|(cpu, pick)| Op::Read { cpu, pick }),
        4 => (sel(), sel()).prop_map(|(cpu, nth)| Op::Speculate { cpu, nth }),
        1 => sel().prop_map(|frame| Op::Punch { frame }),
    ]
}

/// Where the slots live and how they are mapped.
#[derive(Clone, Copy, Debug)]
struct Setup {
    placement: Placement,
    global: bool,
    /// Before a page leaves the file, the CPUs running the VM drop the
    /// window's translations.
    flush_on_punch: bool,
}

/// Today's window.
const SHARED: Setup = Setup {
    placement: Placement::Shared,
    global: true,
    flush_on_punch: false,
};
/// Slots in the VM's own page tables, not global, flushed at a punch.
const PRIVATE: Setup = Setup {
    placement: Placement::Private,
    global: false,
    flush_on_punch: true,
};

/// The machine, the window and the VM's task on each CPU.
struct World {
    m: Machine,
    setup: Setup,
    window: Window,
    /// The VM task of each CPU: its slot stack and what it maps.
    stacks: Vec<SlotStack>,
    mapped: Vec<Vec<(u64, usize)>>,
    in_file: [bool; NR_FRAMES],
}

impl World {
    fn new(depth: PagingDepth, setup: Setup) -> Self {
        let mut m = Machine::new(depth, NR_CPUS, NR_FRAMES);
        for f in 0..NR_FRAMES {
            let frame = m.frame(f);
            m.frame_bytes_mut(frame)[0] = f as u8;
        }
        let not_global = if setup.global {
            0
        } else {
            PageTableFlags::GLOBAL.bits()
        };
        let template = PteTemplate::new(PAGE_KERNEL & !not_global, PHYS_BITS).expect("template");
        // The private placement as the kernel sets it up: the core drops
        // `_PAGE_GLOBAL` itself. The negative tests build global private
        // entries on purpose.
        let window = if setup.placement == Placement::Private && !setup.global {
            m.window()
        } else {
            Window::new(*m.window().layout(), template)
                .with_private_template(m.private_layout(), template)
                .expect("window")
        };
        let mut in_file = [false; NR_FRAMES];
        in_file[..GUEST_FRAMES].fill(true);
        Self {
            m,
            setup,
            window,
            stacks: (0..NR_CPUS).map(|_| SlotStack::new()).collect(),
            mapped: vec![Vec::new(); NR_CPUS as usize],
            in_file,
        }
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Run { cpu, mm } => {
                let (cpu, mm) = (u32::from(cpu) % NR_CPUS, MmId::from(mm) % NR_MMS);
                let c = cpu as usize;
                let on = OnCpu::new(cpu);
                let busy = !self.mapped[c].is_empty();
                if self.m.current_mm(cpu) == VM && mm != VM && busy {
                    let mut hw = self.m.cpu(cpu);
                    self.window
                        .sched_out(&mut hw, &self.stacks[c], PinnedCpu::of(&on))
                        .expect("sched_out");
                }
                let was = self.m.current_mm(cpu);
                self.m.switch_mm(cpu, mm);
                if was != VM && mm == VM && busy {
                    let mut hw = self.m.cpu(cpu);
                    self.window
                        .sched_in(&mut hw, &self.stacks[c], PinnedCpu::of(&on))
                        .expect("sched_in");
                }
            }
            Op::Map { cpu, frame } => {
                let (cpu, f) = (u32::from(cpu) % NR_CPUS, usize::from(frame) % GUEST_FRAMES);
                let c = cpu as usize;
                if self.m.current_mm(cpu) != VM || !self.in_file[f] || self.mapped[c].len() >= 4 {
                    return;
                }
                let on = OnCpu::new(cpu);
                let frame = self.m.frame(f);
                let mut hw = self.m.cpu(cpu);
                let pin = PinnedCpu::of(&on);
                let slot = self
                    .window
                    .map_in(&mut hw, &self.stacks[c], pin, frame, self.setup.placement)
                    .expect("map");
                self.mapped[c].push((slot.as_u64(), f));
            }
            Op::Unmap { cpu } => {
                let cpu = u32::from(cpu) % NR_CPUS;
                let c = cpu as usize;
                if self.m.current_mm(cpu) != VM {
                    return;
                }
                let Some(&(addr, _)) = self.mapped[c].last() else {
                    return;
                };
                let on = OnCpu::new(cpu);
                let addr = self.m.addr(addr);
                let mut hw = self.m.cpu(cpu);
                self.window
                    .unmap(&mut hw, &self.stacks[c], PinnedCpu::of(&on), addr)
                    .expect("unmap");
                self.mapped[c].pop();
            }
            Op::Read { cpu, pick } => {
                let cpu = u32::from(cpu) % NR_CPUS;
                let c = cpu as usize;
                if self.m.current_mm(cpu) != VM || self.mapped[c].is_empty() {
                    return;
                }
                let (addr, f) = self.mapped[c][usize::from(pick) % self.mapped[c].len()];
                let addr = self.m.addr(addr);
                let mut byte = [0u8];
                self.m
                    .read(cpu, addr, &mut byte)
                    .expect("a live mapping reads");
                assert_eq!(byte[0], f as u8, "mapping of frame {f} reads another");
            }
            Op::Speculate { cpu, nth } => {
                let cpu = u32::from(cpu) % NR_CPUS;
                let targets = self.m.speculation_targets(cpu);
                if let Some(&addr) = targets.get(usize::from(nth) % targets.len().max(1)) {
                    self.m.speculate(cpu, addr);
                }
            }
            Op::Punch { frame } => {
                let f = usize::from(frame) % GUEST_FRAMES;
                if !self.mapped.iter().flatten().any(|&(_, g)| g == f) {
                    if self.setup.flush_on_punch {
                        self.m.flush_window_mm(VM);
                    }
                    self.in_file[f] = false;
                }
            }
        }
    }

    /// The first broken property, if any.
    fn check(&self) -> Result<(), String> {
        for cpu in 0..NR_CPUS {
            let mm = self.m.current_mm(cpu);
            for (addr, pte) in self.m.tlb_entries(cpu) {
                let f = gmem_kmap::pfn_of(self.m.template().frame(pte)) as usize;
                if f >= GUEST_FRAMES {
                    continue;
                }
                if !self.in_file[f] {
                    return Err(format!(
                        "CPU {cpu} translates {addr:?} to frame {f}, which left the file"
                    ));
                }
                if mm != VM {
                    return Err(format!(
                        "CPU {cpu}, running process {mm}, translates {addr:?} to the VM's frame {f}"
                    ));
                }
            }
        }
        Ok(())
    }
}

fn run(depth: PagingDepth, setup: Setup, ops: &[Op]) -> Result<(), String> {
    let mut w = World::new(depth, setup);
    for op in ops {
        w.step(op);
        w.check().map_err(|e| format!("after {op:?}: {e}"))?;
    }
    Ok(())
}

/// The example: CPU 3 maps a private page for the VM; CPU 1,
/// running another process, speculatively caches CPU 3's slot. The entry is
/// global, so CPU 1 keeps it across its own context switches, and after CPU
/// 3's local flush, and after the page leaves the file.
#[test]
fn shared_window_leaks_to_another_process() {
    for depth in [PagingDepth::Four, PagingDepth::Five] {
        let ops = [
            Op::Run {
                cpu: 3,
                mm: VM as u8,
            },
            Op::Run { cpu: 1, mm: 2 },
            Op::Map { cpu: 3, frame: 0 },
            Op::Speculate { cpu: 1, nth: 0 },
        ];
        let err = run(depth, SHARED, &ops).expect_err("the shared window leaks");
        assert!(err.contains("CPU 1, running process 2"), "{err}");

        // Nor does unmapping, or switching, or punching undo it.
        let mut w = World::new(depth, SHARED);
        for op in &ops {
            w.step(op);
        }
        for op in [
            Op::Unmap { cpu: 3 },
            Op::Run { cpu: 1, mm: 0 },
            Op::Run { cpu: 1, mm: 2 },
            Op::Punch { frame: 0 },
        ] {
            w.step(&op);
        }
        let err = w.check().expect_err("still translated");
        assert!(err.contains("left the file"), "{err}");
    }
}

/// Runs 1024 random sequences (of `ops`, from a fixed seed) with `setup`:
/// the first broken property, if any.
fn search(depth: PagingDepth, setup: Setup, ops: BoxedStrategy<Op>) -> Result<(), String> {
    // A fixed seed: a negative test must find its leak on every run.
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 1024,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    runner
        .run(&proptest::collection::vec(ops, 1..80), |ops| {
            run(depth, setup, &ops).map_err(TestCaseError::fail)
        })
        .map_err(|e| e.to_string())
}

/// Random sequences find a leak of the shared window, at both depths: the
/// model can fail, and today's placement fails it.
#[test]
fn shared_window_fails_the_speculation_model() {
    for depth in [PagingDepth::Four, PagingDepth::Five] {
        let found = search(depth, SHARED, op().boxed());
        assert!(
            found.is_err(),
            "no leak found at {depth:?} in 256 sequences"
        );
    }
}

/// Without speculation (accesses only fill the TLB of the CPU that makes
/// them), the same sequences keep both properties: what fails above is
/// speculation, not the model's bookkeeping.
#[test]
fn without_speculation_the_shared_window_keeps_them() {
    for depth in [PagingDepth::Four, PagingDepth::Five] {
        let no_speculation =
            op().prop_filter("no speculation", |o| !matches!(o, Op::Speculate { .. }));
        search(depth, SHARED, no_speculation.boxed()).unwrap_or_else(|e| panic!("{depth:?}: {e}"));
    }
}

/// Slots in the VM's own page tables, not global, with the VM's CPUs
/// flushed before a page leaves the file: both properties hold under
/// speculation, at both depths.
#[test]
fn private_window_keeps_both_properties() {
    for depth in [PagingDepth::Four, PagingDepth::Five] {
        search(depth, PRIVATE, op().boxed()).unwrap_or_else(|e| panic!("{depth:?}: {e}"));
    }
}

/// Each half of the private placement is needed: with global entries a CPU
/// keeps the VM's slot across a switch to another process; without the
/// flush at a punch, another CPU of the VM keeps a slot it cached.
#[test]
fn private_window_needs_non_global_entries_and_the_punch_flush() {
    for depth in [PagingDepth::Four, PagingDepth::Five] {
        let global = Setup {
            global: true,
            ..PRIVATE
        };
        // Another CPU of the VM caches CPU 0's slot, then runs process 2.
        let cached = [
            Op::Run {
                cpu: 0,
                mm: VM as u8,
            },
            Op::Run {
                cpu: 1,
                mm: VM as u8,
            },
            Op::Map { cpu: 0, frame: 0 },
            Op::Speculate { cpu: 1, nth: 0 },
        ];
        let mut ops = cached.to_vec();
        ops.push(Op::Run { cpu: 1, mm: 2 });
        let err = run(depth, global, &ops).expect_err("a global entry survives the switch");
        assert!(err.contains("CPU 1, running process 2"), "{depth:?}: {err}");
        run(depth, PRIVATE, &ops).unwrap_or_else(|e| panic!("{depth:?}: {e}"));
        let err = search(depth, global, op().boxed()).expect_err("global entries leak");
        assert!(err.contains("running process"), "{depth:?}: {err}");
        let no_flush = Setup {
            flush_on_punch: false,
            ..PRIVATE
        };
        // The same cached slot, then CPU 0 unmaps and the page is punched.
        let mut ops = cached.to_vec();
        ops.extend([Op::Unmap { cpu: 0 }, Op::Punch { frame: 0 }]);
        let err = run(depth, no_flush, &ops).expect_err("CPU 1 keeps the slot");
        assert!(err.contains("CPU 1 translates"), "{depth:?}: {err}");
        run(depth, PRIVATE, &ops).unwrap_or_else(|e| panic!("{depth:?}: {e}"));
        let err =
            search(depth, no_flush, op().boxed()).expect_err("a cached slot outlives the punch");
        assert!(err.contains("left the file"), "{depth:?}: {err}");
    }
}
