// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Safe Rust use of the window: a guard per mapping, unmapped on drop.
//!
//! A [`LocalWindow`] holds the task's slot stack exclusively and the CPU pin
//! for as long as it lives. A [`Mapping`] mutably borrows the `LocalWindow`
//! (or the mapping) it was made from, so a nested mapping must be dropped
//! before its parent: the borrow checker enforces the LIFO rule that C
//! callers must follow by hand.
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
//! let (mut hw, mut stack, guard) = (Hw, SlotStack::new(), MigrationDisabled);
//! let mut local = LocalWindow::new(&window, &mut hw, &mut stack, PinnedCpu::of(&guard));
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
//! # let (mut hw, mut stack, guard) = (Hw, SlotStack::new(), MigrationDisabled);
//! let mut local = LocalWindow::new(&window, &mut hw, &mut stack, PinnedCpu::of(&guard));
//! let mut outer = local.map(f0).unwrap();
//! let inner = outer.map(f1).unwrap();
//! drop(outer); // error[E0505]: `outer` is still borrowed by `inner`
//! drop(inner);
//! ```
//!
//! - two guards over one task's stack, which would defeat the LIFO rule;
//!
//! ```compile_fail,E0499
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
//! # let (mut hw, mut hw2, mut stack, guard) = (Hw, Hw, SlotStack::new(), MigrationDisabled);
//! let mut one = LocalWindow::new(&window, &mut hw, &mut stack, PinnedCpu::of(&guard));
//! let mut two = LocalWindow::new(&window, &mut hw2, &mut stack, PinnedCpu::of(&guard));
//! let a = one.map(f0).unwrap(); // error[E0499]: `stack` borrowed twice
//! ```
//!
//! - a mapping nobody keeps, which would be unmapped at once.
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
//! # let (mut hw, mut stack, guard) = (Hw, SlotStack::new(), MigrationDisabled);
//! let mut local = LocalWindow::new(&window, &mut hw, &mut stack, PinnedCpu::of(&guard));
//! local.map(f0).unwrap(); // error: unused `Mapping` that must be used
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
/// The task's stack is reached only through this value while it lives
/// (`&mut`), and the context stays on `pin`'s CPU for as long (the pin
/// borrows the guard for `'a`).
pub struct LocalWindow<'a, H: SlotHardware> {
    window: &'a Window,
    hw: &'a mut H,
    stack: &'a mut SlotStack,
    pin: PinnedCpu<'a>,
}

impl<'a, H: SlotHardware> LocalWindow<'a, H> {
    /// The window as seen by the task owning `stack`, pinned by `pin`.
    pub fn new(
        window: &'a Window,
        hw: &'a mut H,
        stack: &'a mut SlotStack,
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
        // The borrows make this the top slot, and the stack is reachable
        // only through the borrowed `LocalWindow`; only a stack changed
        // behind Rust's back (C scribbling on `task_struct`) makes this
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
    use crate::sim::{Machine, OnCpu};

    /// A stack changed under a live guard (as C could) makes the drop fail;
    /// the failure must reach the hardware's WARN, not vanish.
    #[test]
    fn failed_unmap_in_drop_warns() {
        for depth in PagingDepth::ALL {
            let mut machine = Machine::new(depth, 1, 2);
            let (window, frame) = (machine.window(), machine.frame(1));
            let (mut hw, mut stack, cpu) = (machine.cpu(0), SlotStack::new(), OnCpu::new(0));
            let mut local = LocalWindow::new(&window, &mut hw, &mut stack, PinnedCpu::of(&cpu));
            let mapping = local.map(frame).unwrap();
            mapping.local.stack.clear();
            drop(mapping);
            assert_eq!(machine.warnings(), &[Error::SlotNotMapped]);
        }
    }

    #[test]
    fn clean_drops_do_not_warn() {
        let mut machine = Machine::new(PagingDepth::Five, 1, 2);
        let (window, frame) = (machine.window(), machine.frame(1));
        let (mut hw, mut stack, cpu) = (machine.cpu(0), SlotStack::new(), OnCpu::new(0));
        let mut local = LocalWindow::new(&window, &mut hw, &mut stack, PinnedCpu::of(&cpu));
        let mut outer = local.map(frame).unwrap();
        let inner = outer.map(frame).unwrap();
        assert_eq!(inner.unmap(), Ok(()));
        drop(outer);
        assert_eq!(local.depth(), 0);
        assert!(machine.warnings().is_empty());
    }
}
