// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The per-CPU window: map a frame at a private slot, unmap with a local flush.
//!
//! The rules are kmap_local's. A task maps on the CPU it is pinned to (the
//! kernel disables migration while it holds a slot; every operation takes a
//! [`PinnedCpu`] to say so); unmaps are LIFO; a slot is flushed from the
//! local TLB when it is released, never from another CPU's, because no other
//! CPU ever touches it. When the task is scheduled out its slots are
//! cleared, and re-installed when it comes back, so other tasks on the CPU
//! can use the same slots meanwhile.

use core::sync::atomic::{Ordering, compiler_fence};

use x86_64::structures::paging::{PhysFrame, Size4KiB};

use crate::addr::{KernelAddr, PagingDepth};
use crate::cpu::{CpuId, PinnedCpu};
use crate::error::{Error, Result};
use crate::geometry::{Layout, SLOTS_PER_CPU, SlotAddr, SlotId};
use crate::hw::SlotHardware;
use crate::pte::{PteTemplate, frame_from_pfn};
use crate::slot_stack::SlotStack;

/// A validated window: where the slots are and how they are mapped.
///
/// # Invariants
/// Both halves were checked on their own ([`Layout::new`],
/// [`PteTemplate::new`]); every slot PTE the window writes is
/// `template.pte(frame)` at a `layout.slot_addr(cpu, idx)` of the calling
/// CPU, and a slot is written only while the stack that owns it says so.
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

    /// The paging depth the window was laid out for.
    pub fn paging_depth(&self) -> PagingDepth {
        self.layout.paging_depth()
    }

    /// Address of slot `idx` of CPU `cpu`.
    pub fn slot_addr(&self, cpu: CpuId, idx: usize) -> Result<SlotAddr> {
        self.layout.slot_addr(cpu, idx)
    }

    /// Maps `frame` at the next free slot of the pinned CPU and returns its
    /// address.
    ///
    /// The caller keeps migration disabled until the matching
    /// [`unmap`](Self::unmap), and preemption disabled for the call.
    pub fn map<H: SlotHardware>(
        &self,
        hw: &mut H,
        stack: &SlotStack,
        pin: PinnedCpu<'_>,
        frame: PhysFrame<Size4KiB>,
    ) -> Result<SlotAddr> {
        let cpu = pin.cpu();
        let pte = self.template.pte(frame)?;
        stack.check_cpu(cpu)?;
        let idx = stack.depth();
        let slot = self.layout.slot_addr(cpu, idx)?;
        if !hw.pte_is_none(slot) {
            return Err(Error::SlotBusy);
        }
        stack.push(cpu, idx);
        // An IRQ that maps from here on must see the slot as taken.
        compiler_fence(Ordering::SeqCst);
        hw.set_pte(slot, pte);
        stack.save(idx, frame);
        Ok(slot)
    }

    /// Releases the slot containing `addr`, which must be the task's most
    /// recent mapping on the pinned CPU.
    pub fn unmap<H: SlotHardware>(
        &self,
        hw: &mut H,
        stack: &SlotStack,
        pin: PinnedCpu<'_>,
        addr: KernelAddr,
    ) -> Result<()> {
        let cpu = pin.cpu();
        let (slot, slot_addr) = self.layout.locate(addr)?;
        stack.check_cpu(cpu)?;
        if slot.cpu != cpu || slot.idx + 1 != stack.depth() {
            return Err(unmap_misuse(stack, cpu, slot));
        }
        hw.clear_pte(slot_addr);
        hw.flush_local(slot_addr);
        // The slot is unreachable before an IRQ may claim it again.
        compiler_fence(Ordering::SeqCst);
        stack.pop(slot.idx);
        Ok(())
    }

    /// Clears the slots of a task leaving the pinned CPU, so the next task
    /// finds them free. The saved frames stay in the stack for
    /// [`sched_in`](Self::sched_in).
    pub fn sched_out<H: SlotHardware>(
        &self,
        hw: &mut H,
        stack: &SlotStack,
        pin: PinnedCpu<'_>,
    ) -> Result<()> {
        let cpu = pin.cpu();
        stack.check_cpu(cpu)?;
        for (idx, _) in stack.live() {
            let slot = self.layout.slot_addr(cpu, idx)?;
            hw.clear_pte(slot);
            hw.flush_local(slot);
        }
        Ok(())
    }

    /// Re-installs the slots of a task coming back to the pinned CPU.
    ///
    /// Each PTE is built again from the saved frame, never taken from the
    /// stack as a raw word: the stack lives in memory C can write. Nothing
    /// is installed unless every slot can be:
    /// - a task that holds slots of another CPU has migrated:
    ///   [`Error::WrongCpu`];
    /// - a slot that is not empty: [`Error::SlotBusy`];
    /// - a saved frame the template refuses: [`Error::BadPfn`].
    ///
    /// No flush is needed: the slots were not present, and x86 does not
    /// cache absent entries.
    pub fn sched_in<H: SlotHardware>(
        &self,
        hw: &mut H,
        stack: &SlotStack,
        pin: PinnedCpu<'_>,
    ) -> Result<()> {
        let cpu = pin.cpu();
        stack.check_cpu(cpu)?;
        // Every entry is built and every slot checked before any is written.
        let mut ready = [None; SLOTS_PER_CPU];
        for ((idx, pfn), entry) in stack.live().zip(ready.iter_mut()) {
            let slot = self.layout.slot_addr(cpu, idx)?;
            let pte = self.template.pte(frame_from_pfn(pfn)?)?;
            if !hw.pte_is_none(slot) {
                return Err(Error::SlotBusy);
            }
            *entry = Some((slot, pte));
        }
        for (slot, pte) in ready.into_iter().flatten() {
            hw.set_pte(slot, pte);
        }
        Ok(())
    }

    /// Releases everything a task still holds as it exits on the pinned CPU.
    ///
    /// Holding slots at exit is a misuse: they are cleared and flushed so the
    /// CPU's next task finds them free, and [`Error::StackNotEmpty`] says so.
    pub fn release_at_exit<H: SlotHardware>(
        &self,
        hw: &mut H,
        stack: &SlotStack,
        pin: PinnedCpu<'_>,
    ) -> Result<()> {
        if stack.is_empty() {
            return Ok(());
        }
        self.sched_out(hw, stack, pin)?;
        stack.clear();
        Err(Error::StackNotEmpty)
    }
}

/// Why `slot` is not the top of the stack of a task on `cpu`.
#[cold]
fn unmap_misuse(stack: &SlotStack, cpu: CpuId, slot: SlotId) -> Error {
    if slot.cpu != cpu || slot.idx >= stack.depth() {
        Error::SlotNotMapped
    } else {
        Error::NotTopOfStack
    }
}
