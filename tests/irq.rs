// SPDX-License-Identifier: GPL-2.0 OR MIT
//! A hard IRQ may arrive anywhere in a task's map or unmap (preemption is off,
//! interrupts are not), and during sched-in (which runs with interrupts on).
//! The handler maps a page on top of the interrupted task's stack, reads it
//! and unmaps it, as kmap_local allows. These tests fire that handler at
//! every point around every hardware call of each operation and check that
//! both the handler and the interrupted operation see what they would have
//! seen alone, at both paging depths.

use std::cell::{Cell, RefCell};

use gmem_kmap::sim::{CpuHw, Machine, OnCpu};
use gmem_kmap::{
    CpuId, Error, PagingDepth, PinnedCpu, Pte, SLOTS_PER_CPU, SlotAddr, SlotHardware, SlotStack,
    Window,
};
use x86_64::structures::paging::PhysFrame;

const IRQ_PFN: usize = 30;
const OUTER_PFN: usize = 20;

/// CPU 0's hardware, with an interrupt handler that fires at one point.
struct Interrupting<'m, 'w> {
    inner: RefCell<CpuHw<'m>>,
    window: &'w Window,
    stack: &'w SlotStack,
    irq_frame: PhysFrame,
    /// Points passed so far: one before and one after each hardware call.
    points: Cell<usize>,
    /// The point at which the handler runs (0: never).
    fire_at: usize,
    /// What the handler found, once it ran.
    handled: RefCell<Option<Result<(), String>>>,
}

impl Interrupting<'_, '_> {
    fn point(&self) {
        self.points.set(self.points.get() + 1);
        if self.points.get() == self.fire_at {
            *self.handled.borrow_mut() = Some(self.handler());
        }
    }

    /// Map on top of whatever the task holds right now, read, unmap.
    fn handler(&self) -> Result<(), String> {
        let hw = &mut *self.inner.borrow_mut();
        let depth = self.stack.depth();
        // An IRQ handler cannot migrate: it pins itself.
        let irq = OnCpu::new(0);
        let addr = match self
            .window
            .map(hw, self.stack, PinnedCpu::of(&irq), self.irq_frame)
        {
            Ok(slot) => slot.addr(),
            Err(Error::DepthExceeded) if depth == SLOTS_PER_CPU => return Ok(()),
            Err(e) => return Err(format!("irq map at depth {depth}: {e:?}")),
        };
        let mut byte = [0];
        hw.read(addr, &mut byte)
            .map_err(|f| format!("irq read: {f:?}"))?;
        if byte[0] != content(IRQ_PFN) {
            return Err(format!("irq read {:#x} through {addr:?}", byte[0]));
        }
        self.window
            .unmap(hw, self.stack, PinnedCpu::of(&irq), addr)
            .map_err(|e| format!("irq unmap: {e:?}"))?;
        if self.stack.depth() != depth {
            return Err("irq left the stack changed".into());
        }
        Ok(())
    }
}

impl SlotHardware for Interrupting<'_, '_> {
    fn set_pte(&mut self, slot: SlotAddr, pte: Pte) {
        self.point();
        self.inner.borrow_mut().set_pte(slot, pte);
        self.point();
    }

    fn clear_pte(&mut self, slot: SlotAddr) {
        self.point();
        self.inner.borrow_mut().clear_pte(slot);
        self.point();
    }

    fn pte_is_none(&self, slot: SlotAddr) -> bool {
        self.point();
        let none = self.inner.borrow().pte_is_none(slot);
        self.point();
        none
    }

    fn flush_local(&mut self, slot: SlotAddr) {
        self.point();
        self.inner.borrow_mut().flush_local(slot);
        self.point();
    }

    fn warn(&mut self, err: Error) {
        self.inner.borrow_mut().warn(err);
    }
}

fn content(pfn: usize) -> u8 {
    pfn as u8 + 1
}

/// The task's context on CPU 0.
fn cpu0() -> OnCpu {
    OnCpu::new(0)
}

fn slot0(window: &Window, idx: usize) -> SlotAddr {
    window.slot_addr(CpuId::new(0), idx).unwrap()
}

/// A machine at `paging` whose CPU 0 runs a task holding `depth` mappings.
fn setup(paging: PagingDepth, depth: usize) -> (Machine, Window, SlotStack) {
    let mut machine = Machine::new(paging, 2, 32);
    for pfn in 0..32 {
        let frame = machine.frame(pfn);
        machine.frame_bytes_mut(frame)[0] = content(pfn);
    }
    let window = machine.window();
    let stack = SlotStack::new();
    let on = cpu0();
    for pfn in 0..depth {
        let frame = machine.frame(pfn);
        window
            .map(&mut machine.cpu(0), &stack, PinnedCpu::of(&on), frame)
            .unwrap();
    }
    (machine, window, stack)
}

/// What must come out the same with or without the interrupt.
#[derive(Debug, PartialEq)]
struct Outcome {
    result: Result<(), Error>,
    stack: SlotStack,
    slots: Vec<Pte>,
    /// First byte read through each live slot afterwards.
    reads: Vec<Option<u8>>,
}

/// Runs `op` with the handler firing at `fire_at`; returns the outcome, the
/// number of points passed and what the handler found.
fn run(
    paging: PagingDepth,
    depth: usize,
    fire_at: usize,
    op: &dyn Fn(&Window, &mut Interrupting<'_, '_>, &SlotStack) -> Result<(), Error>,
) -> (Outcome, usize, Option<Result<(), String>>) {
    let (mut machine, window, stack) = setup(paging, depth);
    let irq_frame = machine.frame(IRQ_PFN);
    let mut hw = Interrupting {
        inner: RefCell::new(machine.cpu(0)),
        window: &window,
        stack: &stack,
        irq_frame,
        points: Cell::new(0),
        fire_at,
        handled: RefCell::new(None),
    };
    let result = op(&window, &mut hw, &stack);
    let (points, handled) = (hw.points.get(), hw.handled.take());
    drop(hw);
    let slots = (0..SLOTS_PER_CPU)
        .map(|idx| machine.pte(slot0(&window, idx).addr()))
        .collect();
    let reads = (0..stack.depth())
        .map(|idx| {
            let mut byte = [0];
            let addr = slot0(&window, idx).addr();
            machine.read(0, addr, &mut byte).ok().map(|()| byte[0])
        })
        .collect();
    for (va, pte) in machine.tlb_entries(0) {
        assert_eq!(
            machine.pte(va),
            pte,
            "stale TLB entry for {va:?} after fire_at={fire_at}"
        );
    }
    let outcome = Outcome {
        result,
        stack,
        slots,
        reads,
    };
    (outcome, points, handled)
}

/// Fires the handler at every point of `op` and compares with a quiet run,
/// at both paging depths.
fn interrupt_everywhere(
    name: &str,
    depth: usize,
    op: &dyn Fn(&Window, &mut Interrupting<'_, '_>, &SlotStack) -> Result<(), Error>,
) {
    for paging in PagingDepth::ALL {
        let (quiet, points, handled) = run(paging, depth, 0, op);
        assert!(handled.is_none());
        assert!(points >= 2, "{name}: no hardware call to interrupt");
        for fire_at in 1..=points {
            let (noisy, _, handled) = run(paging, depth, fire_at, op);
            let at = format!("{name} at {paging:?}, depth {depth}, irq at point {fire_at}");
            assert_eq!(handled, Some(Ok(())), "{at}");
            assert_eq!(noisy, quiet, "{at}");
        }
    }
}

fn outer_frame() -> PhysFrame {
    gmem_kmap::frame_from_pfn(OUTER_PFN as u64).unwrap()
}

#[test]
fn irq_during_map() {
    for depth in [0, 1, 7, SLOTS_PER_CPU - 1] {
        interrupt_everywhere("map", depth, &|w, hw, s| {
            w.map(hw, s, PinnedCpu::of(&cpu0()), outer_frame())
                .map(drop)
        });
    }
}

#[test]
fn irq_during_unmap() {
    for depth in [1, 2, SLOTS_PER_CPU] {
        interrupt_everywhere("unmap", depth, &|w, hw, s| {
            let top = slot0(w, s.depth() - 1).addr();
            w.unmap(hw, s, PinnedCpu::of(&cpu0()), top)
        });
    }
}

#[test]
fn irq_during_sched_in() {
    for depth in [1, 3, SLOTS_PER_CPU] {
        interrupt_everywhere("sched_in", depth, &|w, hw, s| {
            // Switched out quietly (interrupts are off there), back in noisily.
            let on = cpu0();
            w.sched_out(&mut *hw.inner.borrow_mut(), s, PinnedCpu::of(&on))?;
            w.sched_in(hw, s, PinnedCpu::of(&on))
        });
    }
}
