// SPDX-License-Identifier: GPL-2.0 OR MIT
//! One test per misuse: each is reported as its own error, and leaves the
//! page table, the TLBs and the task's stack exactly as they were.

use gmem_kmap::sim::{Machine, PAGE_KERNEL, PHYS_BITS, WINDOW_BASE};
use gmem_kmap::{
    Error, Layout, LocalWindow, Pte, PteTemplate, Reinsert, SLOTS_PER_CPU, SlotHardware, SlotStack,
    Window,
};
use x86_64::VirtAddr;
use x86_64::structures::paging::PhysFrame;

struct Rig {
    machine: Machine,
    window: Window,
    stack: SlotStack,
}

fn rig(nr_cpus: u32) -> Rig {
    let machine = Machine::new(nr_cpus, 32);
    let layout = Layout::new(VirtAddr::new(WINDOW_BASE), nr_cpus).unwrap();
    Rig {
        window: Window::new(layout, machine.template()),
        machine,
        stack: SlotStack::new(),
    }
}

impl Rig {
    fn frame(&self, pfn: usize) -> PhysFrame {
        self.machine.frame(pfn)
    }

    fn map(&mut self, cpu: u32, frame: PhysFrame) -> Result<VirtAddr, Error> {
        let mut hw = self.machine.cpu(cpu);
        self.window.map(&mut hw, &self.stack, cpu, frame)
    }

    fn unmap(&mut self, cpu: u32, addr: VirtAddr) -> Result<(), Error> {
        let mut hw = self.machine.cpu(cpu);
        self.window.unmap(&mut hw, &self.stack, cpu, addr)
    }

    /// Everything an error must leave untouched.
    fn snapshot(&self) -> (SlotStack, Vec<Pte>, gmem_kmap::sim::Counters) {
        let layout = self.window.layout();
        let ptes = (0..layout.nr_cpus())
            .flat_map(|cpu| (0..SLOTS_PER_CPU).map(move |idx| (cpu, idx)))
            .map(|(cpu, idx)| self.machine.pte(layout.slot_addr(cpu, idx).unwrap()))
            .collect();
        (self.stack.clone(), ptes, self.machine.counters())
    }

    /// Runs `misuse`, checks it fails with `want` and changes nothing.
    fn refuses(&mut self, want: Error, misuse: impl FnOnce(&mut Self) -> Result<(), Error>) {
        let before = self.snapshot();
        assert_eq!(misuse(self), Err(want));
        assert_eq!(self.snapshot(), before, "{want:?} changed state");
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
    assert_eq!(Layout::new(VirtAddr::new(0x1000), 1), Err(Error::BadLayout));
}

#[test]
fn bad_pfn() {
    let mut r = rig(1);
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
}

#[test]
fn bad_cpu() {
    let mut r = rig(2);
    let f = r.frame(0);
    r.refuses(Error::BadCpu, |r| {
        let mut hw = r.machine.cpu(1);
        r.window.map(&mut hw, &r.stack, 2, f).map(drop)
    });
}

#[test]
fn depth_exceeded() {
    let mut r = rig(1);
    for pfn in 0..SLOTS_PER_CPU {
        let f = r.frame(pfn);
        r.map(0, f).unwrap();
    }
    let f = r.frame(SLOTS_PER_CPU);
    r.refuses(Error::DepthExceeded, |r| r.map(0, f).map(drop));
}

#[test]
fn not_top_of_stack() {
    let mut r = rig(1);
    let (f0, f1) = (r.frame(0), r.frame(1));
    let first = r.map(0, f0).unwrap();
    r.map(0, f1).unwrap();
    r.refuses(Error::NotTopOfStack, |r| r.unmap(0, first));
}

#[test]
fn slot_not_mapped() {
    let mut r = rig(2);
    let f = r.frame(0);
    let free = r.window.slot_addr(0, 0).unwrap();
    r.refuses(Error::SlotNotMapped, |r| r.unmap(0, free));
    r.map(0, f).unwrap();
    let above = r.window.slot_addr(0, 1).unwrap();
    r.refuses(Error::SlotNotMapped, |r| r.unmap(0, above));
    // Another CPU's slot is never this task's, even at the same index.
    let foreign = r.window.slot_addr(1, 0).unwrap();
    r.refuses(Error::SlotNotMapped, |r| {
        let mut hw = r.machine.cpu(0);
        r.window.unmap(&mut hw, &r.stack, 0, foreign)
    });
}

#[test]
fn not_a_slot() {
    let mut r = rig(1);
    let f = r.frame(0);
    r.map(0, f).unwrap();
    let direct = Machine::direct_map_addr(f);
    r.refuses(Error::NotASlot, |r| r.unmap(0, direct));
}

#[test]
fn slot_busy_on_map() {
    let mut r = rig(1);
    let (f0, f1) = (r.frame(0), r.frame(1));
    let slot = r.window.slot_addr(0, 0).unwrap();
    // Someone else wrote the slot's PTE: the core must not overwrite it.
    let stray = r.window.template().pte(f1).unwrap();
    r.machine.cpu(0).set_pte(slot, stray);
    r.refuses(Error::SlotBusy, |r| r.map(0, f0).map(drop));
    assert_eq!(r.machine.pte(slot), stray);
}

#[test]
fn slot_busy_on_sched_in() {
    let mut r = rig(1);
    let (f0, f1) = (r.frame(0), r.frame(1));
    r.map(0, f0).unwrap();
    let mut hw = r.machine.cpu(0);
    r.window.sched_out(&mut hw, &r.stack, 0).unwrap();
    // Another task took slot 0 and did not release it before we came back.
    let other = SlotStack::new();
    r.window.map(&mut hw, &other, 0, f1).unwrap();
    r.refuses(Error::SlotBusy, |r| {
        let mut hw = r.machine.cpu(0);
        r.window.sched_in(&mut hw, &r.stack, 0)
    });
}

#[test]
fn wrong_cpu() {
    let mut r = rig(2);
    let (f0, f1) = (r.frame(0), r.frame(1));
    let addr = r.map(0, f0).unwrap();
    r.refuses(Error::WrongCpu, |r| r.map(1, f1).map(drop));
    r.refuses(Error::WrongCpu, |r| r.unmap(1, addr));
    let mut hw = r.machine.cpu(0);
    r.window.sched_out(&mut hw, &r.stack, 0).unwrap();
    // Scheduled in on CPU 1 while holding CPU 0's slot: nothing installed.
    r.refuses(Error::WrongCpu, |r| {
        let mut hw = r.machine.cpu(1);
        r.window.sched_in(&mut hw, &r.stack, 1)
    });
    r.refuses(Error::WrongCpu, |r| {
        let mut hw = r.machine.cpu(1);
        r.window.sched_out(&mut hw, &r.stack, 1)
    });
}

#[test]
fn stack_not_empty_at_fork() {
    let mut r = rig(1);
    let f = r.frame(0);
    r.map(0, f).unwrap();
    let child = r.stack.clone();
    assert_eq!(child.reset_for_fork(), Err(Error::StackNotEmpty));
    assert!(child.is_empty());
    assert_eq!(r.stack.depth(), 1, "the parent keeps its mapping");
}

#[test]
fn stack_not_empty_at_exit_releases_the_slots() {
    let mut r = rig(1);
    let (f0, f1) = (r.frame(0), r.frame(1));
    let a0 = r.map(0, f0).unwrap();
    let a1 = r.map(0, f1).unwrap();
    let mut hw = r.machine.cpu(0);
    assert_eq!(
        r.window.release_at_exit(&mut hw, &r.stack, 0),
        Err(Error::StackNotEmpty)
    );
    assert!(r.stack.is_empty());
    // Cleared and flushed: the CPU's next task finds both slots free.
    for a in [a0, a1] {
        assert!(r.machine.pte(a).is_none());
        assert!(r.machine.tlb_entry(0, a).is_none());
    }
    let mut hw = r.machine.cpu(0);
    assert_eq!(r.window.release_at_exit(&mut hw, &r.stack, 0), Ok(()));
}

#[test]
fn bad_refcount() {
    let mut r = rig(2);
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
}

#[test]
fn guards_unmap_in_reverse_order() {
    let mut r = rig(1);
    let (f0, f1) = (r.frame(0), r.frame(1));
    r.machine.frame_bytes_mut(f1)[0] = 0xab;
    let mut hw = r.machine.cpu(0);
    let mut local = LocalWindow::new(&r.window, &mut hw, &r.stack, 0);
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
}
