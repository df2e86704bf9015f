// SPDX-License-Identifier: GPL-2.0 OR MIT
//! One test per misuse: each is reported as its own error, and leaves the
//! page table, the TLBs and the task's stack exactly as they were. Every
//! test runs at both paging depths.

use gmem_kmap::sim::{Machine, OnCpu, PAGE_KERNEL, PHYS_BITS};
use gmem_kmap::{
    CpuId, Error, KernelAddr, Layout, LocalWindow, PagingDepth, PinCurrentCpu, Pte, PteTemplate,
    Reinsert, SLOTS_PER_CPU, SlotAddr, SlotHardware, SlotStack, Window,
};
use x86_64::structures::paging::PhysFrame;

struct Rig {
    machine: Machine,
    window: Window,
    stack: SlotStack,
}

fn rig(depth: PagingDepth, nr_cpus: u32) -> Rig {
    let machine = Machine::new(depth, nr_cpus, 32);
    Rig {
        window: machine.window(),
        machine,
        stack: SlotStack::new(),
    }
}

/// Runs `test` on a fresh rig of `nr_cpus` CPUs at each depth.
fn at_both_depths(nr_cpus: u32, test: impl Fn(&mut Rig)) {
    for depth in PagingDepth::ALL {
        test(&mut rig(depth, nr_cpus));
    }
}

impl Rig {
    fn frame(&self, pfn: usize) -> PhysFrame {
        self.machine.frame(pfn)
    }

    fn slot(&self, cpu: u32, idx: usize) -> SlotAddr {
        self.window.slot_addr(CpuId::new(cpu), idx).unwrap()
    }

    fn map(&mut self, cpu: u32, frame: PhysFrame) -> Result<KernelAddr, Error> {
        let mut hw = self.machine.cpu(cpu);
        let on = OnCpu::new(cpu);
        let slot = self.window.map(&mut hw, &self.stack, on.pin(), frame)?;
        Ok(slot.addr())
    }

    fn unmap(&mut self, cpu: u32, addr: KernelAddr) -> Result<(), Error> {
        let mut hw = self.machine.cpu(cpu);
        let on = OnCpu::new(cpu);
        self.window.unmap(&mut hw, &self.stack, on.pin(), addr)
    }

    fn sched_out(&mut self, cpu: u32) -> Result<(), Error> {
        let mut hw = self.machine.cpu(cpu);
        let on = OnCpu::new(cpu);
        self.window.sched_out(&mut hw, &self.stack, on.pin())
    }

    fn sched_in(&mut self, cpu: u32) -> Result<(), Error> {
        let mut hw = self.machine.cpu(cpu);
        let on = OnCpu::new(cpu);
        self.window.sched_in(&mut hw, &self.stack, on.pin())
    }

    fn exit(&mut self, cpu: u32) -> Result<(), Error> {
        let mut hw = self.machine.cpu(cpu);
        let on = OnCpu::new(cpu);
        self.window.release_at_exit(&mut hw, &self.stack, on.pin())
    }

    /// Everything an error must leave untouched.
    fn snapshot(&self) -> (SlotStack, Vec<Pte>, gmem_kmap::sim::Counters) {
        let layout = self.window.layout();
        let ptes = (0..layout.nr_cpus())
            .flat_map(|cpu| (0..SLOTS_PER_CPU).map(move |idx| (cpu, idx)))
            .map(|(cpu, idx)| self.machine.pte(self.slot(cpu, idx).addr()))
            .collect();
        (self.stack.clone(), ptes, self.machine.counters())
    }

    /// Runs `misuse`, checks it fails with `want` and changes nothing.
    fn refuses(&mut self, want: Error, misuse: impl FnOnce(&mut Self) -> Result<(), Error>) {
        let before = self.snapshot();
        assert_eq!(misuse(self), Err(want));
        assert_eq!(self.snapshot(), before, "{want:?} changed state");
    }

    /// Overwrites saved frame `idx` of the stack as C could: the stack lives
    /// in `task_struct`, at the offsets the header gives.
    fn scribble_pfn(&mut self, idx: usize, pfn: u64) {
        let (_, offset) = SlotStack::c_fields()
            .into_iter()
            .find(|(name, _)| *name == "pfn")
            .unwrap();
        let base = (&mut self.stack as *mut SlotStack).cast::<u8>();
        // SAFETY: the stack is `repr(C)` with `pfn: [Cell<u64>; N]` at
        // `offset`; `idx < N`, and `&mut` makes this the only access.
        unsafe { base.add(offset).cast::<u64>().add(idx).write(pfn) }
    }
}

#[test]
fn codes_are_distinct_and_negative() {
    let all = Error::all();
    for (i, a) in all.iter().enumerate() {
        assert!(a.code() < 0, "{a:?}");
        assert!(!a.as_str().is_empty());
        for b in &all[i + 1..] {
            assert_ne!(a.code(), b.code(), "{a:?} and {b:?}");
        }
    }
}

#[test]
fn bad_template() {
    assert_eq!(
        PteTemplate::new(PAGE_KERNEL | 4, PHYS_BITS),
        Err(Error::BadTemplate)
    );
}

#[test]
fn bad_layout() {
    for depth in PagingDepth::ALL {
        assert_eq!(Layout::new(0x1000, 1, depth), Err(Error::BadLayout));
    }
    // 4-level vmalloc is fine at 5 levels; 5-level vmalloc is not at 4.
    let vmalloc5 = gmem_kmap::sim::AddressMap::of(PagingDepth::Five).vmalloc;
    assert_eq!(
        Layout::new(vmalloc5, 1, PagingDepth::Four),
        Err(Error::BadLayout)
    );
}

#[test]
fn bad_paging_depth() {
    assert_eq!(PagingDepth::from_levels(3), Err(Error::BadPagingDepth));
}

#[test]
fn bad_pfn() {
    at_both_depths(1, |r| {
        let beyond = gmem_kmap::frame_from_pfn(1 << (PHYS_BITS - 12)).unwrap();
        r.refuses(Error::BadPfn, |r| r.map(0, beyond).map(drop));
        let reinsert = Reinsert::new(*r.window.template());
        let mut users = 0;
        let mut hw = r.machine.cpu(0);
        assert_eq!(
            reinsert.map(&mut hw, beyond, &mut users),
            Err(Error::BadPfn)
        );
        assert_eq!((users, r.machine.counters().direct_map_writes), (0, 0));
    });
}

#[test]
fn bad_pfn_saved_by_c_is_refused_on_sched_in() {
    at_both_depths(1, |r| {
        let (f0, f1) = (r.frame(0), r.frame(1));
        r.map(0, f0).unwrap();
        r.map(0, f1).unwrap();
        r.sched_out(0).unwrap();
        // A word beyond the physical width: nothing is installed.
        r.scribble_pfn(1, 1 << (PHYS_BITS - 12));
        r.refuses(Error::BadPfn, |r| r.sched_in(0));
        // Another frame: the template's protection, never the scribbled bits.
        r.scribble_pfn(1, 5);
        r.sched_in(0).unwrap();
        let pte = r.machine.pte(r.slot(0, 1).addr());
        assert_eq!(pte, r.window.template().pte(r.frame(5)).unwrap());
    });
}

#[test]
fn bad_cpu() {
    at_both_depths(2, |r| {
        let f = r.frame(0);
        // A CPU the window was not sized for (the machine has no such CPU,
        // so the hardware handle is CPU 1's).
        r.refuses(Error::BadCpu, |r| {
            let (mut hw, on) = (r.machine.cpu(1), OnCpu::new(2));
            r.window.map(&mut hw, &r.stack, on.pin(), f).map(drop)
        });
    });
}

#[test]
fn depth_exceeded() {
    at_both_depths(1, |r| {
        for pfn in 0..SLOTS_PER_CPU {
            let f = r.frame(pfn);
            r.map(0, f).unwrap();
        }
        let f = r.frame(SLOTS_PER_CPU);
        r.refuses(Error::DepthExceeded, |r| r.map(0, f).map(drop));
    });
}

#[test]
fn not_top_of_stack() {
    at_both_depths(1, |r| {
        let (f0, f1) = (r.frame(0), r.frame(1));
        let first = r.map(0, f0).unwrap();
        r.map(0, f1).unwrap();
        r.refuses(Error::NotTopOfStack, |r| r.unmap(0, first));
    });
}

#[test]
fn slot_not_mapped() {
    at_both_depths(2, |r| {
        let f = r.frame(0);
        let free = r.slot(0, 0).addr();
        r.refuses(Error::SlotNotMapped, |r| r.unmap(0, free));
        r.map(0, f).unwrap();
        let above = r.slot(0, 1).addr();
        r.refuses(Error::SlotNotMapped, |r| r.unmap(0, above));
        // Another CPU's slot is never this task's, even at the same index.
        let foreign = r.slot(1, 0).addr();
        r.refuses(Error::SlotNotMapped, |r| r.unmap(0, foreign));
    });
}

#[test]
fn not_a_slot() {
    at_both_depths(1, |r| {
        let f = r.frame(0);
        r.map(0, f).unwrap();
        let direct = r.machine.direct_map_addr(f);
        r.refuses(Error::NotASlot, |r| r.unmap(0, direct));
    });
}

#[test]
fn slot_busy_on_map() {
    at_both_depths(1, |r| {
        let (f0, f1) = (r.frame(0), r.frame(1));
        let slot = r.slot(0, 0);
        // Someone else wrote the slot's PTE: the core must not overwrite it.
        let stray = r.window.template().pte(f1).unwrap();
        r.machine.cpu(0).set_pte(slot, stray);
        r.refuses(Error::SlotBusy, |r| r.map(0, f0).map(drop));
        assert_eq!(r.machine.pte(slot.addr()), stray);
    });
}

#[test]
fn slot_busy_on_sched_in() {
    at_both_depths(1, |r| {
        let (f0, f1) = (r.frame(0), r.frame(1));
        r.map(0, f0).unwrap();
        r.sched_out(0).unwrap();
        // Another task took slot 0 and did not release it before we came back.
        let other = SlotStack::new();
        let on = OnCpu::new(0);
        let mut hw = r.machine.cpu(0);
        r.window.map(&mut hw, &other, on.pin(), f1).unwrap();
        r.refuses(Error::SlotBusy, |r| r.sched_in(0));
    });
}

#[test]
fn wrong_cpu() {
    at_both_depths(2, |r| {
        let (f0, f1) = (r.frame(0), r.frame(1));
        let addr = r.map(0, f0).unwrap();
        r.refuses(Error::WrongCpu, |r| r.map(1, f1).map(drop));
        r.refuses(Error::WrongCpu, |r| r.unmap(1, addr));
        r.sched_out(0).unwrap();
        // Scheduled in on CPU 1 while holding CPU 0's slot: nothing installed.
        r.refuses(Error::WrongCpu, |r| r.sched_in(1));
        r.refuses(Error::WrongCpu, |r| r.sched_out(1));
    });
}

#[test]
fn stack_not_empty_at_fork() {
    at_both_depths(1, |r| {
        let f = r.frame(0);
        r.map(0, f).unwrap();
        let child = r.stack.clone();
        assert_eq!(child.reset_for_fork(), Err(Error::StackNotEmpty));
        assert!(child.is_empty());
        assert_eq!(r.stack.depth(), 1, "the parent keeps its mapping");
    });
}

#[test]
fn stack_not_empty_at_exit_releases_the_slots() {
    at_both_depths(1, |r| {
        let (f0, f1) = (r.frame(0), r.frame(1));
        let a0 = r.map(0, f0).unwrap();
        let a1 = r.map(0, f1).unwrap();
        assert_eq!(r.exit(0), Err(Error::StackNotEmpty));
        assert!(r.stack.is_empty());
        // Cleared and flushed: the CPU's next task finds both slots free.
        for a in [a0, a1] {
            assert!(r.machine.pte(a).is_none());
            assert!(r.machine.tlb_entry(0, a).is_none());
        }
        assert_eq!(r.exit(0), Ok(()));
    });
}

#[test]
fn bad_refcount() {
    at_both_depths(2, |r| {
        let f = r.frame(0);
        let reinsert = Reinsert::new(*r.window.template());
        let mut hw = r.machine.cpu(0);
        let mut users = 0;
        assert_eq!(
            reinsert.unmap(&mut hw, f, &mut users),
            Err(Error::BadRefcount)
        );
        let mut users = u32::MAX;
        assert_eq!(
            reinsert.map(&mut hw, f, &mut users),
            Err(Error::BadRefcount)
        );
        assert_eq!(users, u32::MAX);
        assert_eq!(r.machine.counters(), Default::default());
    });
}

#[test]
fn guards_unmap_in_reverse_order() {
    at_both_depths(1, |r| {
        let (f0, f1) = (r.frame(0), r.frame(1));
        r.machine.frame_bytes_mut(f1)[0] = 0xab;
        let on = OnCpu::new(0);
        let mut hw = r.machine.cpu(0);
        // SAFETY: the only guard over the rig's stack.
        let mut local = unsafe { LocalWindow::new(&r.window, &mut hw, &r.stack, on.pin()) };
        {
            let mut outer = local.map(f0).unwrap();
            let mut inner = outer.map(f1).unwrap();
            let mut byte = [0];
            let addr = inner.addr();
            inner.hw().read(addr, &mut byte).unwrap();
            assert_eq!(byte, [0xab]);
            assert_eq!(inner.unmap(), Ok(()));
            drop(outer);
        }
        assert_eq!(local.depth(), 0);
        assert!(r.machine.warnings().is_empty());
    });
}

/// A 5-level window address faults on a 4-level machine (#GP), as it would
/// on hardware: the simulator checks canonical form at its depth.
#[test]
fn five_level_addresses_fault_at_four_levels() {
    let mut four = Machine::new(PagingDepth::Four, 1, 1);
    let five = KernelAddr::new(0xffa0_0000_0000_0000, PagingDepth::Five).unwrap();
    let mut byte = [0];
    assert_eq!(
        four.read(0, five, &mut byte),
        Err(gmem_kmap::sim::Fault::NonCanonical(five))
    );
}
