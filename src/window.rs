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
//!
//! A window may have two placements of the same slots ([`Placement`]): the
//! shared one, in page tables every process shares, and a private one, in
//! page tables of the current process's own and never global. Each mapping
//! chooses; the task's stack remembers which, so that unmapping and the
//! context switch write the right entries. Where a private entry lives (the
//! tables of the process the CPU runs) is the hardware's business: the core
//! passes the slot's address, which says the placement.

use core::sync::atomic::{Ordering, compiler_fence};

use x86_64::structures::paging::{PhysFrame, Size4KiB};

use crate::addr::{KernelAddr, PagingDepth};
use crate::cpu::{CpuId, PinnedCpu};
use crate::error::{Error, Result};
use crate::geometry::{Layout, Placement, SLOTS_PER_CPU, SlotAddr, SlotId};
use crate::hw::SlotHardware;
use crate::pte::{PteTemplate, frame_from_pfn};
use crate::slot_stack::SlotStack;

/// A validated window: where the slots are and how they are mapped.
///
/// # Invariants
/// Every part was checked on its own ([`Layout::new`], [`PteTemplate::new`]);
/// a private layout, if any, serves the same CPUs at the same depth and does
/// not overlap the shared one. Every slot PTE the window writes is
/// `template_of(p).pte(frame)` at a `layout_of(p).slot_addr(cpu, idx)` of
/// the calling CPU, where `p` is the placement the owning stack records for
/// the slot, and a slot is written only while that stack says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    layout: Layout,
    template: PteTemplate,
    private: Option<(Layout, PteTemplate)>,
}

impl Window {
    /// A window with `layout`'s slots, mapped with `template`'s protection,
    /// and no private placement.
    pub const fn new(layout: Layout, template: PteTemplate) -> Self {
        Self {
            layout,
            template,
            private: None,
        }
    }

    /// The same window with a private placement of its slots at `private`,
    /// mapped with the shared template minus `_PAGE_GLOBAL`.
    ///
    /// [`Error::BadLayout`] unless `private` serves the same CPUs at the same
    /// depth and does not overlap the shared slots.
    pub fn with_private(self, private: Layout) -> Result<Self> {
        self.with_private_parts(private, self.template.without_global())
    }

    /// [`with_private`](Self::with_private) with a template of the caller's,
    /// global or not: for tests that show what a global private entry does.
    #[cfg(any(test, feature = "sim"))]
    pub fn with_private_template(self, private: Layout, template: PteTemplate) -> Result<Self> {
        self.with_private_parts(private, template)
    }

    fn with_private_parts(self, private: Layout, template: PteTemplate) -> Result<Self> {
        self.check_private(&private)?;
        Ok(Self {
            private: Some((private.in_placement(Placement::Private), template)),
            ..self
        })
    }

    fn check_private(&self, private: &Layout) -> Result<()> {
        let shared = &self.layout;
        let (s, p) = (shared.base().as_u64(), private.base().as_u64());
        let apart = p >= s + shared.size() || s >= p + private.size();
        if private.nr_cpus() != shared.nr_cpus()
            || private.paging_depth() != shared.paging_depth()
            || !apart
        {
            return Err(Error::BadLayout);
        }
        Ok(())
    }

    /// Where the shared slots are.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// How frames are mapped in the shared slots.
    pub fn template(&self) -> &PteTemplate {
        &self.template
    }

    /// Where the private slots are, if the window has them.
    pub fn private_layout(&self) -> Option<&Layout> {
        self.private.as_ref().map(|(layout, _)| layout)
    }

    /// The slots of `placement`.
    pub fn layout_of(&self, placement: Placement) -> Result<&Layout> {
        self.parts(placement).map(|(layout, _)| layout)
    }

    /// How frames are mapped in the slots of `placement`.
    pub fn template_of(&self, placement: Placement) -> Result<&PteTemplate> {
        self.parts(placement).map(|(_, template)| template)
    }

    /// The slots of `placement` and how frames are mapped in them.
    #[inline]
    fn parts(&self, placement: Placement) -> Result<(&Layout, &PteTemplate)> {
        match (placement, &self.private) {
            (Placement::Shared, _) => Ok((&self.layout, &self.template)),
            (Placement::Private, Some((layout, template))) => Ok((layout, template)),
            (Placement::Private, None) => Err(Error::NoPrivateWindow),
        }
    }

    /// The slot containing `addr` and its placement.
    fn locate(&self, addr: KernelAddr) -> Result<(SlotId, SlotAddr, Placement)> {
        match (self.layout.locate(addr), self.private_layout()) {
            (Ok((slot, at)), _) => Ok((slot, at, Placement::Shared)),
            (Err(_), Some(private)) if private.contains(addr) => {
                let (slot, at) = private.locate(addr)?;
                Ok((slot, at, Placement::Private))
            }
            (Err(err), _) => Err(err),
        }
    }

    /// The paging depth the window was laid out for.
    pub fn paging_depth(&self) -> PagingDepth {
        self.layout.paging_depth()
    }

    /// Address of shared slot `idx` of CPU `cpu`.
    pub fn slot_addr(&self, cpu: CpuId, idx: usize) -> Result<SlotAddr> {
        self.layout.slot_addr(cpu, idx)
    }

    /// Maps `frame` at the next free shared slot of the pinned CPU and
    /// returns its address: [`map_in`](Self::map_in) the shared placement.
    pub fn map<H: SlotHardware>(
        &self,
        hw: &mut H,
        stack: &SlotStack,
        pin: PinnedCpu<'_>,
        frame: PhysFrame<Size4KiB>,
    ) -> Result<SlotAddr> {
        self.map_in(hw, stack, pin, frame, Placement::Shared)
    }

    /// Maps `frame` at the next free slot of the pinned CPU, in `placement`,
    /// and returns its address.
    ///
    /// The caller keeps migration disabled until the matching
    /// [`unmap`](Self::unmap), and preemption disabled for the call. For the
    /// private placement it also keeps the process whose tables the CPU
    /// runs until then: the task's own.
    pub fn map_in<H: SlotHardware>(
        &self,
        hw: &mut H,
        stack: &SlotStack,
        pin: PinnedCpu<'_>,
        frame: PhysFrame<Size4KiB>,
        placement: Placement,
    ) -> Result<SlotAddr> {
        let cpu = pin.cpu();
        let (layout, template) = self.parts(placement)?;
        if !hw.has_tables(placement) {
            return Err(Error::NullPointer);
        }
        let pte = template.pte(frame)?;
        stack.check_cpu(cpu)?;
        let idx = stack.depth();
        let slot = layout.slot_addr(cpu, idx)?;
        if !hw.pte_is_none(slot) {
            return Err(Error::SlotBusy);
        }
        stack.push(cpu, idx, placement);
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
        // The one address that may be released: the top slot's, in the
        // placement the stack records for it. Anything else is misuse.
        let top = match (stack.cpu(), stack.depth().checked_sub(1)) {
            (Some(owner), Some(idx)) if owner == cpu => self
                .parts(stack.placement(idx))
                .and_then(|(layout, _)| layout.slot_addr(cpu, idx))
                .ok(),
            _ => None,
        };
        let Some(slot) = top.filter(|top| top.addr() == addr.page_base()) else {
            return Err(self.unmap_misuse(stack, cpu, addr));
        };
        if !hw.has_tables(slot.placement()) {
            return Err(Error::NullPointer);
        }
        hw.clear_pte(slot);
        hw.flush_local(slot);
        // The slot is unreachable before an IRQ may claim it again.
        compiler_fence(Ordering::SeqCst);
        stack.pop(slot.index());
        Ok(())
    }

    /// Why `addr` is not the top slot of a task on `cpu`. Out of line, to
    /// keep the unmap's own path short; not `#[cold]`, whose
    /// `.text.unlikely` the kernel object may not carry.
    #[inline(never)]
    fn unmap_misuse(&self, stack: &SlotStack, cpu: CpuId, addr: KernelAddr) -> Error {
        let (slot, _, _) = match self.locate(addr) {
            Ok(found) => found,
            Err(err) => return err,
        };
        if let Err(err) = stack.check_cpu(cpu) {
            return err;
        }
        if slot.cpu != cpu || slot.idx >= stack.depth() {
            Error::SlotNotMapped
        } else if slot.idx + 1 != stack.depth() {
            Error::NotTopOfStack
        } else {
            // The top index, but in the other placement: not this mapping.
            Error::SlotNotMapped
        }
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
        check_tables(hw, stack)?;
        for (idx, _, placement) in stack.live_placed() {
            let slot = self.layout_of(placement)?.slot_addr(cpu, idx)?;
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
        check_tables(hw, stack)?;
        // Every entry is built and every slot checked before any is written.
        let mut ready = [None; SLOTS_PER_CPU];
        for ((idx, pfn, placement), entry) in stack.live_placed().zip(ready.iter_mut()) {
            let slot = self.layout_of(placement)?.slot_addr(cpu, idx)?;
            let pte = self.template_of(placement)?.pte(frame_from_pfn(pfn)?)?;
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

/// Fails, before anything changes, unless `hw` can write the tables of
/// every placement `stack` holds slots in.
fn check_tables<H: SlotHardware>(hw: &H, stack: &SlotStack) -> Result<()> {
    if stack
        .live_placed()
        .all(|(_, _, placement)| hw.has_tables(placement))
    {
        Ok(())
    } else {
        Err(Error::NullPointer)
    }
}
