// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The hardware each strategy may touch, as two small traits.
//!
//! The kernel glue implements them with `set_pte` / `pte_clear` /
//! `flush_tlb_one_kernel` and `set_direct_map_*_noflush` /
//! `flush_tlb_kernel_range`; the simulator implements them over a model MMU.
//! They are separate so that the window strategy, which is generic over
//! [`SlotHardware`] only, cannot write the direct map or flush another CPU's
//! TLB: the type system says so, and the simulator's counters confirm it.

use x86_64::VirtAddr;
use x86_64::structures::paging::{PhysFrame, Size4KiB};

use crate::pte::Pte;

/// What the window needs: the slot PTEs and the local TLB.
///
/// Every method acts for the CPU the caller runs on; `addr` is always the
/// page-aligned address of a window slot.
pub trait SlotHardware {
    /// Writes `pte` into the kernel page-table entry that maps `addr`.
    fn set_pte(&mut self, addr: VirtAddr, pte: Pte);
    /// Clears the entry that maps `addr` (no flush).
    fn clear_pte(&mut self, addr: VirtAddr);
    /// Reads the entry that maps `addr`.
    fn read_pte(&self, addr: VirtAddr) -> Pte;
    /// Drops any translation of `addr` from this CPU's TLB, and only this one's.
    fn flush_local(&mut self, addr: VirtAddr);
}

/// What re-insertion needs: the page's direct-map entry and a global flush.
pub trait DirectMapHardware {
    /// Makes the direct-map entry of `frame` present (no flush needed: x86
    /// does not cache non-present entries).
    fn direct_map_present(&mut self, frame: PhysFrame<Size4KiB>);
    /// Makes the direct-map entry of `frame` absent (no flush).
    fn direct_map_absent(&mut self, frame: PhysFrame<Size4KiB>);
    /// Drops the translation of `frame`'s direct-map address from every
    /// CPU's TLB: an IPI to each other online CPU.
    fn flush_all(&mut self, frame: PhysFrame<Size4KiB>);
}
