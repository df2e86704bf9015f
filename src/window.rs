// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The per-CPU window: map a frame at a private slot, unmap with a local flush.
//!
//! The rules are kmap_local's. A task maps on the CPU it is pinned to (the
//! kernel disables migration while it holds a slot); unmaps are LIFO; a slot
//! is flushed from the local TLB when it is released, never from another
//! CPU's, because no other CPU ever touches it. When the task is scheduled
//! out its slots are cleared, and re-installed when it comes back, so other
//! tasks on the CPU can use the same slots meanwhile.

use core::sync::atomic::{Ordering, compiler_fence};

use x86_64::VirtAddr;
use x86_64::structures::paging::{PhysFrame, Size4KiB};

use crate::error::{Error, Result};
use crate::geometry::{Layout, SLOT_SIZE, SlotId};
use crate::hw::SlotHardware;
use crate::pte::PteTemplate;
use crate::slot_stack::SlotStack;

/// A validated window: where the slots are and how they are mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    layout: Layout,
    template: PteTemplate,
}

impl Window {
    /// A window with `layout`'s slots, mapped with `template`'s protection.
    pub const fn new(layout: Layout, template: PteTemplate) -> Self {
        Self { layout, template }
    }

    /// Where the slots are.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// How frames are mapped.
    pub fn template(&self) -> &PteTemplate {
        &self.template
    }

    /// Address of slot `idx` of CPU `cpu`.
    pub fn slot_addr(&self, cpu: u32, idx: usize) -> Result<VirtAddr> {
        self.layout.slot_addr(cpu, idx)
    }

    /// Maps `frame` at the next free slot of `cpu` and returns its address.
    ///
    /// The caller runs on `cpu` with migration disabled until the matching
    /// [`unmap`](Self::unmap), and with preemption disabled for the call.
    pub fn map<H: SlotHardware>(
        &self,
        hw: &mut H,
        stack: &SlotStack,
        cpu: u32,
        frame: PhysFrame<Size4KiB>,
    ) -> Result<VirtAddr> {
        let pte = self.template.pte(frame)?;
        stack.check_cpu(cpu)?;
        let idx = stack.depth();
        let addr = self.layout.slot_addr(cpu, idx)?;
        if !hw.read_pte(addr).is_none() {
            return Err(Error::SlotBusy);
        }
        stack.push(cpu, idx);
        // An IRQ that maps from here on must see the slot as taken.
        compiler_fence(Ordering::SeqCst);
        hw.set_pte(addr, pte);
        stack.save(idx, pte);
        Ok(addr)
    }

    /// Releases the slot containing `addr`, which must be the task's most
    /// recent mapping on `cpu`.
    pub fn unmap<H: SlotHardware>(
        &self,
        hw: &mut H,
        stack: &SlotStack,
        cpu: u32,
        addr: VirtAddr,
    ) -> Result<()> {
        let slot = self.layout.slot_of(addr)?;
        stack.check_cpu(cpu)?;
        if slot.cpu != cpu || slot.idx + 1 != stack.depth() {
            return Err(unmap_misuse(stack, cpu, slot));
        }
        let addr = slot_base(addr);
        hw.clear_pte(addr);
        hw.flush_local(addr);
        // The slot is unreachable before an IRQ may claim it again.
        compiler_fence(Ordering::SeqCst);
        stack.pop(slot.idx);
        Ok(())
    }

    /// Clears the slots of a task leaving `cpu`, so the next task finds them
    /// free. The saved PTEs stay in the stack for [`sched_in`](Self::sched_in).
    pub fn sched_out<H: SlotHardware>(
        &self,
        hw: &mut H,
        stack: &SlotStack,
        cpu: u32,
    ) -> Result<()> {
        stack.check_cpu(cpu)?;
        for (idx, _) in stack.live() {
            let addr = self.layout.slot_addr(cpu, idx)?;
            hw.clear_pte(addr);
            hw.flush_local(addr);
        }
        Ok(())
    }

    /// Re-installs the slots of a task coming back to `cpu`.
    ///
    /// A task that holds slots of another CPU has migrated: nothing is
    /// installed and [`Error::WrongCpu`] is returned. No flush is needed:
    /// the slots were not present, and x86 does not cache absent entries.
    pub fn sched_in<H: SlotHardware>(&self, hw: &mut H, stack: &SlotStack, cpu: u32) -> Result<()> {
        stack.check_cpu(cpu)?;
        for (idx, _) in stack.live() {
            if !hw.read_pte(self.layout.slot_addr(cpu, idx)?).is_none() {
                return Err(Error::SlotBusy);
            }
        }
        for (idx, pte) in stack.live() {
            hw.set_pte(self.layout.slot_addr(cpu, idx)?, pte);
        }
        Ok(())
    }

    /// Releases everything a task still holds as it exits on `cpu`.
    ///
    /// Holding slots at exit is a misuse: they are cleared and flushed so the
    /// CPU's next task finds them free, and [`Error::StackNotEmpty`] says so.
    pub fn release_at_exit<H: SlotHardware>(
        &self,
        hw: &mut H,
        stack: &SlotStack,
        cpu: u32,
    ) -> Result<()> {
        if stack.is_empty() {
            return Ok(());
        }
        self.sched_out(hw, stack, cpu)?;
        stack.clear();
        Err(Error::StackNotEmpty)
    }
}

/// Why `slot` is not the top of the stack of a task on `cpu`.
#[cold]
fn unmap_misuse(stack: &SlotStack, cpu: u32, slot: SlotId) -> Error {
    if slot.cpu != cpu || slot.idx >= stack.depth() {
        Error::SlotNotMapped
    } else {
        Error::NotTopOfStack
    }
}

/// The start of the slot containing `addr`.
#[inline]
fn slot_base(addr: VirtAddr) -> VirtAddr {
    // SAFETY: clearing in-page bits of a canonical address keeps it canonical.
    unsafe { VirtAddr::new_unsafe(addr.as_u64() & !(SLOT_SIZE - 1)) }
}
