// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Safe Rust use of the window: a guard per mapping, unmapped on drop.
//!
//! A [`Mapping`] mutably borrows the [`LocalWindow`] (or the mapping) it was
//! made from, so a nested mapping must be dropped before its parent: the
//! borrow checker enforces the LIFO rule that C callers must follow by hand.
//!
//! ```
//! # use gmem_kmap::{Layout, LocalWindow, Pte, PteTemplate, SlotHardware, SlotStack, Window};
//! # use x86_64::VirtAddr;
//! # struct Hw;
//! # impl SlotHardware for Hw {
//! #     fn set_pte(&mut self, _: VirtAddr, _: Pte) {}
//! #     fn clear_pte(&mut self, _: VirtAddr) {}
//! #     fn read_pte(&self, _: VirtAddr) -> Pte { Pte::NONE }
//! #     fn flush_local(&mut self, _: VirtAddr) {}
//! # }
//! # let layout = Layout::new(VirtAddr::new(0xffff_fe00_0000_0000), 1).unwrap();
//! # let window = Window::new(layout, PteTemplate::new(0x8000_0000_0000_0163, 46).unwrap());
//! # let (f0, f1) = (gmem_kmap::frame_from_pfn(1).unwrap(), gmem_kmap::frame_from_pfn(2).unwrap());
//! let (mut hw, stack) = (Hw, SlotStack::new());
//! let mut local = LocalWindow::new(&window, &mut hw, &stack, 0);
//! let mut outer = local.map(f0).unwrap();
//! let inner = outer.map(f1).unwrap();
//! drop(inner); // unmaps slot 1
//! drop(outer); // then slot 0
//! ```
//!
//! Dropping them the other way round does not compile:
//!
//! ```compile_fail,E0505
//! # use gmem_kmap::{Layout, LocalWindow, Pte, PteTemplate, SlotHardware, SlotStack, Window};
//! # use x86_64::VirtAddr;
//! # struct Hw;
//! # impl SlotHardware for Hw {
//! #     fn set_pte(&mut self, _: VirtAddr, _: Pte) {}
//! #     fn clear_pte(&mut self, _: VirtAddr) {}
//! #     fn read_pte(&self, _: VirtAddr) -> Pte { Pte::NONE }
//! #     fn flush_local(&mut self, _: VirtAddr) {}
//! # }
//! # let layout = Layout::new(VirtAddr::new(0xffff_fe00_0000_0000), 1).unwrap();
//! # let window = Window::new(layout, PteTemplate::new(0x8000_0000_0000_0163, 46).unwrap());
//! # let (f0, f1) = (gmem_kmap::frame_from_pfn(1).unwrap(), gmem_kmap::frame_from_pfn(2).unwrap());
//! let (mut hw, stack) = (Hw, SlotStack::new());
//! let mut local = LocalWindow::new(&window, &mut hw, &stack, 0);
//! let mut outer = local.map(f0).unwrap();
//! let inner = outer.map(f1).unwrap();
//! drop(outer); // error[E0505]: `outer` is still borrowed by `inner`
//! drop(inner);
//! ```

use core::mem::ManuallyDrop;

use x86_64::VirtAddr;
use x86_64::structures::paging::{PhysFrame, Size4KiB};

use crate::error::Result;
use crate::hw::SlotHardware;
use crate::slot_stack::SlotStack;
use crate::window::Window;

/// One task's use of the window on the CPU it is pinned to.
pub struct LocalWindow<'a, H: SlotHardware> {
    window: &'a Window,
    hw: &'a mut H,
    stack: &'a SlotStack,
    cpu: u32,
}

impl<'a, H: SlotHardware> LocalWindow<'a, H> {
    /// The window as seen by the task owning `stack`, running on `cpu`.
    pub fn new(window: &'a Window, hw: &'a mut H, stack: &'a SlotStack, cpu: u32) -> Self {
        Self {
            window,
            hw,
            stack,
            cpu,
        }
    }

    /// Maps `frame`; the returned guard unmaps it when dropped.
    pub fn map(&mut self, frame: PhysFrame<Size4KiB>) -> Result<Mapping<'_, 'a, H>> {
        let addr = self.window.map(self.hw, self.stack, self.cpu, frame)?;
        Ok(Mapping { local: self, addr })
    }

    /// The hardware, for accesses through live mappings.
    pub fn hw(&mut self) -> &mut H {
        self.hw
    }

    /// Live slots of the task.
    pub fn depth(&self) -> usize {
        self.stack.depth()
    }

    fn unmap(&mut self, addr: VirtAddr) -> Result<()> {
        self.window.unmap(self.hw, self.stack, self.cpu, addr)
    }
}

/// A live mapping; dropping it unmaps the slot.
pub struct Mapping<'m, 'a, H: SlotHardware> {
    local: &'m mut LocalWindow<'a, H>,
    addr: VirtAddr,
}

impl<'a, H: SlotHardware> Mapping<'_, 'a, H> {
    /// The slot address the frame is mapped at.
    pub fn addr(&self) -> VirtAddr {
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
        // Cannot fail: the borrow makes this the top slot, and the stack is
        // reachable only through the borrowed `LocalWindow`.
        let result = self.local.unmap(self.addr);
        debug_assert!(result.is_ok(), "guarded unmap failed: {result:?}");
    }
}
