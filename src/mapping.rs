// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Safe Rust use of the window: a guard per mapping, unmapped on drop.
//!
//! A [`LocalWindow`] is the only guard over the task's slot stack, and holds
//! the CPU pin, for as long as it lives. A [`Mapping`] mutably borrows the
//! `LocalWindow` (or the mapping) it was made from, so a nested mapping must
//! be dropped before its parent: the borrow checker enforces the LIFO rule
//! that C callers must follow by hand.
//!
//! The stack is shared, not borrowed exclusively: an interrupt handler on
//! the same CPU maps on top of it, and the scheduler's hooks save and
//! restore it while the task is preempted, each through a reference of its
//! own. That is why making a `LocalWindow` is `unsafe`: only the caller can
//! promise that no *other guard* uses the stack meanwhile.
//!
//! ```
//! # use gmem_kmap::*;
//! # struct Hw;
//! # impl SlotHardware for Hw {
//! #     fn set_pte(&mut self, _: SlotAddr, _: Pte) {}
//! #     fn clear_pte(&mut self, _: SlotAddr) {}
//! #     fn pte_is_none(&self, _: SlotAddr) -> bool { true }
//! #     fn flush_local(&mut self, _: SlotAddr) {}
//! #     fn warn(&mut self, err: Error) { panic!("{err}") }
//! # }
//! # struct MigrationDisabled;
//! # // SAFETY: a doctest has one thread, which stands for CPU 0.
//! # unsafe impl PinCurrentCpu for MigrationDisabled {
//! #     fn current_cpu(&self) -> CpuId { CpuId::new(0) }
//! # }
//! # let layout = Layout::new(0xffa0_0000_0000_0000, 1, PagingDepth::Five).unwrap();
//! # let window = Window::new(layout, PteTemplate::new(0x8000_0000_0000_0163, 46).unwrap());
//! # let (f0, f1) = (frame_from_pfn(1).unwrap(), frame_from_pfn(2).unwrap());
//! let (mut hw, stack, guard) = (Hw, SlotStack::new(), MigrationDisabled);
//! // SAFETY: this is the only guard over `stack`.
//! let mut local = unsafe { LocalWindow::new(&window, &mut hw, &stack, PinnedCpu::of(&guard)) };
//! let mut outer = local.map(f0).unwrap();
//! let inner = outer.map(f1).unwrap();
//! drop(inner); // unmaps slot 1
//! drop(outer); // then slot 0
//! ```
//!
//! What does not compile:
//!
//! - dropping them the other way round;
//!
//! ```compile_fail,E0505
//! # use gmem_kmap::*;
//! # struct Hw;
//! # impl SlotHardware for Hw {
//! #     fn set_pte(&mut self, _: SlotAddr, _: Pte) {}
//! #     fn clear_pte(&mut self, _: SlotAddr) {}
//! #     fn pte_is_none(&self, _: SlotAddr) -> bool { true }
//! #     fn flush_local(&mut self, _: SlotAddr) {}
//! #     fn warn(&mut self, err: Error) { panic!("{err}") }
//! # }
//! # struct MigrationDisabled;
//! # // SAFETY: a doctest has one thread, which stands for CPU 0.
//! # unsafe impl PinCurrentCpu for MigrationDisabled {
//! #     fn current_cpu(&self) -> CpuId { CpuId::new(0) }
//! # }
//! # let layout = Layout::new(0xffa0_0000_0000_0000, 1, PagingDepth::Five).unwrap();
//! # let window = Window::new(layout, PteTemplate::new(0x8000_0000_0000_0163, 46).unwrap());
//! # let (f0, f1) = (frame_from_pfn(1).unwrap(), frame_from_pfn(2).unwrap());
//! # let (mut hw, stack, guard) = (Hw, SlotStack::new(), MigrationDisabled);
//! # // SAFETY: this is the only guard over `stack`.
//! let mut local = unsafe { LocalWindow::new(&window, &mut hw, &stack, PinnedCpu::of(&guard)) };
//! let mut outer = local.map(f0).unwrap();
//! let inner = outer.map(f1).unwrap();
//! drop(outer); // error[E0505]: `outer` is still borrowed by `inner`
//! drop(inner);
//! ```
//!
//! - a guard made without the caller's promise that it is the stack's only
//!   one (two guards over one stack would defeat the LIFO rule);
//!
//! ```compile_fail,E0133
//! # use gmem_kmap::*;
//! # struct Hw;
//! # impl SlotHardware for Hw {
//! #     fn set_pte(&mut self, _: SlotAddr, _: Pte) {}
//! #     fn clear_pte(&mut self, _: SlotAddr) {}
//! #     fn pte_is_none(&self, _: SlotAddr) -> bool { true }
//! #     fn flush_local(&mut self, _: SlotAddr) {}
//! #     fn warn(&mut self, err: Error) { panic!("{err}") }
//! # }
//! # struct MigrationDisabled;
//! # // SAFETY: a doctest has one thread, which stands for CPU 0.
//! # unsafe impl PinCurrentCpu for MigrationDisabled {
//! #     fn current_cpu(&self) -> CpuId { CpuId::new(0) }
//! # }
//! # let layout = Layout::new(0xffa0_0000_0000_0000, 1, PagingDepth::Five).unwrap();
//! # let window = Window::new(layout, PteTemplate::new(0x8000_0000_0000_0163, 46).unwrap());
//! # let f0 = frame_from_pfn(1).unwrap();
//! # let (mut hw, stack, guard) = (Hw, SlotStack::new(), MigrationDisabled);
//! let mut local = LocalWindow::new(&window, &mut hw, &stack, PinnedCpu::of(&guard));
//! // error[E0133]: call to unsafe function requires unsafe block
//! # let _ = f0;
//! ```
//!
//! - a mapping nobody keeps, which would be unmapped at once (kept in a
//!   binding, the same code compiles: `let _mapping = local.map(f0)`).
//!
//! ```compile_fail
//! # #![deny(unused_must_use)]
//! # use gmem_kmap::*;
//! # struct Hw;
//! # impl SlotHardware for Hw {
//! #     fn set_pte(&mut self, _: SlotAddr, _: Pte) {}
//! #     fn clear_pte(&mut self, _: SlotAddr) {}
//! #     fn pte_is_none(&self, _: SlotAddr) -> bool { true }
//! #     fn flush_local(&mut self, _: SlotAddr) {}
//! #     fn warn(&mut self, err: Error) { panic!("{err}") }
//! # }
//! # struct MigrationDisabled;
//! # // SAFETY: a doctest has one thread, which stands for CPU 0.
//! # unsafe impl PinCurrentCpu for MigrationDisabled {
//! #     fn current_cpu(&self) -> CpuId { CpuId::new(0) }
//! # }
//! # let layout = Layout::new(0xffa0_0000_0000_0000, 1, PagingDepth::Five).unwrap();
//! # let window = Window::new(layout, PteTemplate::new(0x8000_0000_0000_0163, 46).unwrap());
//! # let f0 = frame_from_pfn(1).unwrap();
//! # let (mut hw, stack, guard) = (Hw, SlotStack::new(), MigrationDisabled);
//! # // SAFETY: this is the only guard over `stack`.
//! # let mut local = unsafe { LocalWindow::new(&window, &mut hw, &stack, PinnedCpu::of(&guard)) };
//! local.map(f0).unwrap(); // error: unused `Mapping` that must be used
//! ```
//!
//! ```
//! # #![deny(unused_must_use)]
//! # use gmem_kmap::*;
//! # struct Hw;
//! # impl SlotHardware for Hw {
//! #     fn set_pte(&mut self, _: SlotAddr, _: Pte) {}
//! #     fn clear_pte(&mut self, _: SlotAddr) {}
//! #     fn pte_is_none(&self, _: SlotAddr) -> bool { true }
//! #     fn flush_local(&mut self, _: SlotAddr) {}
//! #     fn warn(&mut self, err: Error) { panic!("{err}") }
//! # }
//! # struct MigrationDisabled;
//! # // SAFETY: a doctest has one thread, which stands for CPU 0.
//! # unsafe impl PinCurrentCpu for MigrationDisabled {
//! #     fn current_cpu(&self) -> CpuId { CpuId::new(0) }
//! # }
//! # let layout = Layout::new(0xffa0_0000_0000_0000, 1, PagingDepth::Five).unwrap();
//! # let window = Window::new(layout, PteTemplate::new(0x8000_0000_0000_0163, 46).unwrap());
//! # let f0 = frame_from_pfn(1).unwrap();
//! # let (mut hw, stack, guard) = (Hw, SlotStack::new(), MigrationDisabled);
//! # // SAFETY: this is the only guard over `stack`.
//! # let mut local = unsafe { LocalWindow::new(&window, &mut hw, &stack, PinnedCpu::of(&guard)) };
//! let _mapping = local.map(f0).unwrap(); // the same, kept: compiles
//! ```

use core::mem::ManuallyDrop;

use x86_64::structures::paging::{PhysFrame, Size4KiB};

use crate::addr::KernelAddr;
use crate::cpu::PinnedCpu;
use crate::error::Result;
use crate::hw::SlotHardware;
use crate::slot_stack::SlotStack;
use crate::window::Window;

/// One task's use of the window on the CPU it is pinned to.
///
/// # Invariants
/// No other guard uses the task's stack while this one lives (the caller of
/// [`new`](Self::new) promised it), so the mappings made through it are the
/// top of the stack in the order the borrows force; interrupt handlers and
/// the scheduler's hooks that reach the stack meanwhile leave it as they
/// found it. The context stays on `pin`'s CPU for as long (the pin borrows
/// the guard for `'a`).
pub struct LocalWindow<'a, H: SlotHardware> {
    window: &'a Window,
    hw: &'a mut H,
    stack: &'a SlotStack,
    pin: PinnedCpu<'a>,
}

impl<'a, H: SlotHardware> LocalWindow<'a, H> {
    /// The window as seen by the task owning `stack`, pinned by `pin`.
    ///
    /// # Safety
    /// While the returned value lives, no other `LocalWindow` over `stack`
    /// exists, except one made by an interrupt handler on the same CPU that
    /// it drops before returning (nesting on top, as kmap_local allows),
    /// and nothing else maps or unmaps on `stack` without restoring it.
    pub unsafe fn new(
        window: &'a Window,
        hw: &'a mut H,
        stack: &'a SlotStack,
        pin: PinnedCpu<'a>,
    ) -> Self {
        Self {
            window,
            hw,
            stack,
            pin,
        }
    }

    /// Maps `frame`; the returned guard unmaps it when dropped.
    pub fn map(&mut self, frame: PhysFrame<Size4KiB>) -> Result<Mapping<'_, 'a, H>> {
        let slot = self.window.map(self.hw, self.stack, self.pin, frame)?;
        Ok(Mapping {
            local: self,
            addr: slot.addr(),
        })
    }

    /// The hardware, for accesses through live mappings.
    pub fn hw(&mut self) -> &mut H {
        self.hw
    }

    /// Live slots of the task.
    pub fn depth(&self) -> usize {
        self.stack.depth()
    }

    fn unmap(&mut self, addr: KernelAddr) -> Result<()> {
        self.window.unmap(self.hw, self.stack, self.pin, addr)
    }
}

/// A live mapping; dropping it unmaps the slot.
#[must_use = "dropping a Mapping unmaps the page at once"]
pub struct Mapping<'m, 'a, H: SlotHardware> {
    local: &'m mut LocalWindow<'a, H>,
    addr: KernelAddr,
}

impl<'a, H: SlotHardware> Mapping<'_, 'a, H> {
    /// The address the frame is mapped at.
    pub fn addr(&self) -> KernelAddr {
        self.addr
    }

    /// Maps another frame on top of this one.
    pub fn map(&mut self, frame: PhysFrame<Size4KiB>) -> Result<Mapping<'_, 'a, H>> {
        self.local.map(frame)
    }

    /// The hardware, for accesses through this mapping.
    pub fn hw(&mut self) -> &mut H {
        self.local.hw()
    }

    /// Unmaps now and reports what the core said.
    pub fn unmap(self) -> Result<()> {
        let mut this = ManuallyDrop::new(self);
        let addr = this.addr;
        this.local.unmap(addr)
    }
}

impl<H: SlotHardware> Drop for Mapping<'_, '_, H> {
    fn drop(&mut self) {
        // The borrows make this the top slot, and no other guard uses the
        // stack (`new`'s contract); only a stack changed behind Rust's back
        // (C scribbling on `task_struct`, a broken contract) makes this
        // fail. Say so loudly rather than leak the slot in silence.
        if let Err(err) = self.local.unmap(self.addr) {
            self.local.hw.warn(err);
        }
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use super::*;
    use crate::Error;
    use crate::addr::PagingDepth;
    use crate::geometry::SlotAddr;
    use crate::pte::Pte;
    use crate::sim::{Machine, OnCpu};

    /// Hardware for a second guard: the stack is what the test watches.
    struct NoopHw;

    impl SlotHardware for NoopHw {
        fn set_pte(&mut self, _: SlotAddr, _: Pte) {}
        fn clear_pte(&mut self, _: SlotAddr) {}
        fn pte_is_none(&self, _: SlotAddr) -> bool {
            true
        }
        fn flush_local(&mut self, _: SlotAddr) {}
        fn warn(&mut self, err: Error) {
            panic!("the second guard's drop must succeed: {err}");
        }
    }

    /// A stack changed under a live guard (as C could) makes the drop fail;
    /// the failure must reach the hardware's WARN, not vanish.
    #[test]
    fn failed_unmap_in_drop_warns() {
        for depth in PagingDepth::ALL {
            let mut machine = Machine::new(depth, 1, 2);
            let (window, frame) = (machine.window(), machine.frame(1));
            let (mut hw, stack, cpu) = (machine.cpu(0), SlotStack::new(), OnCpu::new(0));
            // SAFETY: the only guard over `stack`; the test breaks the
            // stack behind it on purpose, as C could.
            let mut local =
                unsafe { LocalWindow::new(&window, &mut hw, &stack, PinnedCpu::of(&cpu)) };
            let mapping = local.map(frame).unwrap();
            stack.clear();
            drop(mapping);
            assert_eq!(machine.warnings(), &[Error::SlotNotMapped]);
        }
    }

    /// Two guards over one stack (a broken contract): dropping the lower
    /// mapping first is refused, reported, and leaves the slot held.
    #[test]
    fn out_of_order_drop_across_guards_warns() {
        let mut machine = Machine::new(PagingDepth::Four, 1, 3);
        let window = machine.window();
        let (f1, f2) = (machine.frame(1), machine.frame(2));
        let (mut hw, stack, cpu) = (machine.cpu(0), SlotStack::new(), OnCpu::new(0));
        let mut noop = NoopHw;
        // SAFETY: broken on purpose: two guards over `stack`; both use
        // shared references to its cells, so memory stays sound.
        let (mut one, mut two) = unsafe {
            (
                LocalWindow::new(&window, &mut hw, &stack, PinnedCpu::of(&cpu)),
                LocalWindow::new(&window, &mut noop, &stack, PinnedCpu::of(&cpu)),
            )
        };
        let lower = one.map(f1).unwrap();
        let upper = two.map(f2).unwrap();
        drop(lower);
        assert_eq!(stack.depth(), 2, "the refused unmap kept the slot");
        drop(upper);
        assert_eq!(stack.depth(), 1);
        assert_eq!(machine.warnings(), &[Error::NotTopOfStack]);
    }

    #[test]
    fn clean_drops_do_not_warn() {
        let mut machine = Machine::new(PagingDepth::Five, 1, 2);
        let (window, frame) = (machine.window(), machine.frame(1));
        let (mut hw, stack, cpu) = (machine.cpu(0), SlotStack::new(), OnCpu::new(0));
        // SAFETY: the only guard over `stack`.
        let mut local = unsafe { LocalWindow::new(&window, &mut hw, &stack, PinnedCpu::of(&cpu)) };
        let mut outer = local.map(frame).unwrap();
        let inner = outer.map(frame).unwrap();
        assert_eq!(inner.unmap(), Ok(()));
        drop(outer);
        assert_eq!(local.depth(), 0);
        assert!(machine.warnings().is_empty());
    }
}
