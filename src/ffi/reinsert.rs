// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The C ABI of the re-insertion strategy (feature `reinsert`), which the
//! kernel builds only to compare the window against: it needs two more
//! callbacks from the glue, the direct map and a kernel-wide flush.

use x86_64::structures::paging::{PhysFrame, Size4KiB};

use super::{from_c, status, window};
use crate::error::Result;
use crate::hw::DirectMapHardware;
use crate::pte::{frame_from_pfn, pfn_of};
use crate::reinsert::Reinsert;

// Provided by the kernel glue of the comparison.
unsafe extern "C" {
    /// Makes the direct-map entry of page frame `pfn` present or absent,
    /// without a flush (`set_direct_map_{default,invalid}_noflush`).
    fn gmem_kmap_hw_direct_map_set(pfn: u64, present: bool);
    /// Flushes the direct-map address of `pfn` on every CPU
    /// (`flush_tlb_kernel_range`).
    fn gmem_kmap_hw_flush_all(pfn: u64);
}

/// The direct map as the kernel glue provides it.
struct KernelDirectMap;

impl DirectMapHardware for KernelDirectMap {
    fn direct_map_present(&mut self, frame: PhysFrame<Size4KiB>) {
        // SAFETY: the glue only re-inserts frames of its own (guest_memfd)
        // pages, and the core only passes frames the caller handed in.
        unsafe { gmem_kmap_hw_direct_map_set(pfn_of(frame), true) }
    }

    fn direct_map_absent(&mut self, frame: PhysFrame<Size4KiB>) {
        // SAFETY: as above.
        unsafe { gmem_kmap_hw_direct_map_set(pfn_of(frame), false) }
    }

    fn flush_all(&mut self, frame: PhysFrame<Size4KiB>) {
        // SAFETY: flushing a kernel address everywhere is harmless.
        unsafe { gmem_kmap_hw_flush_all(pfn_of(frame)) }
    }
}

/// Runs `op` on re-insertion and the user count behind `users`.
///
/// # Safety
/// As [`from_c`] for `users`.
unsafe fn with_users(users: *mut u32, op: impl FnOnce(Reinsert, &mut u32) -> Result<()>) -> i32 {
    let run = || {
        let reinsert = Reinsert::new(*window()?.template());
        // SAFETY: forwarded from the caller.
        op(reinsert, unsafe { from_c(users)? })
    };
    status(run())
}

/// Re-insertion: makes page frame `pfn` present in the direct map if
/// `*users` is 0, and counts one more user.
///
/// # Safety
/// `users` is null or valid, and the caller serializes all users of `pfn`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_reinsert_map(pfn: u64, users: *mut u32) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_users(users, |reinsert, users| {
            reinsert.map(&mut KernelDirectMap, frame_from_pfn(pfn)?, users)
        })
    }
}

/// Re-insertion: counts one user fewer; the last removes `pfn` from the
/// direct map and flushes it on every CPU.
///
/// # Safety
/// As [`gmem_reinsert_map`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_reinsert_unmap(pfn: u64, users: *mut u32) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_users(users, |reinsert, users| {
            reinsert.unmap(&mut KernelDirectMap, frame_from_pfn(pfn)?, users)
        })
    }
}
