// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The C ABI of the block pool (feature `pool`): the kernel keeps the
//! records (`struct gmem_pool_block`, one per block the pool may hold) and
//! its lock, and passes them in on every call; the core keeps the
//! bookkeeping. Each function returns 0 or a negative [`PoolError`] code.
//!
//! The contract of every function here ("the records' contract"):
//! `records` is null or valid for `nr` records that `gmem_pool_init` set
//! up, and they are exclusively the caller's for the call (its lock).

use x86_64::PhysAddr;
use x86_64::structures::paging::{PhysFrame, Size2MiB, Size4KiB};

use super::from_c;
use crate::pool::{Block, Pool, PoolError, PoolHardware, PoolStats, Result};
use crate::pte::{frame_from_pfn, pfn_of};

// Provided by the kernel glue of the pool.
unsafe extern "C" {
    /// Makes the direct-map entries of the 512 pages from `pfn` absent,
    /// without a flush; 0 or a negative errno (a split needed memory).
    fn gmem_kmap_hw_pool_block_absent(pfn: u64) -> i32;
    /// Makes them present again, without a flush.
    fn gmem_kmap_hw_pool_block_present(pfn: u64);
    /// Flushes the direct map of page frames `[start, end)` on every CPU.
    fn gmem_kmap_hw_pool_flush_all(start: u64, end: u64);
    /// Zeroes page frame `pfn`, out of the direct map; 0 or a negative errno.
    fn gmem_kmap_hw_pool_zero(pfn: u64) -> i32;
}

/// The pool's hardware as the kernel glue provides it.
struct KernelPoolHw;

fn block_pfn(block: PhysFrame<Size2MiB>) -> u64 {
    block.start_address().as_u64() >> 12
}

impl PoolHardware for KernelPoolHw {
    fn block_absent(&mut self, block: PhysFrame<Size2MiB>) -> Result<()> {
        // SAFETY: the pool only passes blocks the glue handed in, fresh
        // from the page allocator and owned by the pool.
        match unsafe { gmem_kmap_hw_pool_block_absent(block_pfn(block)) } {
            0 => Ok(()),
            _ => Err(PoolError::Hardware),
        }
    }

    fn block_present(&mut self, block: PhysFrame<Size2MiB>) {
        // SAFETY: as above; the pool gives back only blocks no file holds.
        unsafe { gmem_kmap_hw_pool_block_present(block_pfn(block)) }
    }

    fn flush_all_range(&mut self, start: PhysAddr, end: PhysAddr) {
        // SAFETY: flushing kernel addresses everywhere is harmless.
        unsafe { gmem_kmap_hw_pool_flush_all(start.as_u64() >> 12, end.as_u64() >> 12) }
    }

    fn zero(&mut self, frame: PhysFrame<Size4KiB>) -> Result<()> {
        // SAFETY: the pool zeroes only free pages of its own blocks.
        match unsafe { gmem_kmap_hw_pool_zero(pfn_of(frame)) } {
            0 => Ok(()),
            _ => Err(PoolError::Hardware),
        }
    }
}

fn pool_status(result: Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(err) => err.code(),
    }
}

/// Runs `op` on the pool kept in `records[..nr]`.
///
/// # Safety
/// `records` is null or valid for `nr` records, set up by
/// [`gmem_pool_init`], and exclusively the caller's for the call (its lock).
unsafe fn with_pool(
    records: *mut Block,
    nr: usize,
    limit: usize,
    op: impl FnOnce(&mut Pool<'_>) -> Result<()>,
) -> i32 {
    if records.is_null() {
        return PoolError::BadAddress.code();
    }
    // SAFETY: forwarded from the caller: valid, exclusive, `nr` long.
    let blocks = unsafe { core::slice::from_raw_parts_mut(records, nr) };
    pool_status(op(&mut Pool::from_records(blocks, limit)))
}

/// Writes `value` through a C out-pointer, refusing null.
///
/// # Safety
/// As [`from_c`].
unsafe fn put<T>(out: *mut T, value: T) -> Result<()> {
    // SAFETY: forwarded from the caller.
    *unsafe { from_c(out) }.map_err(|_| PoolError::BadAddress)? = value;
    Ok(())
}

fn page(pfn: u64) -> Result<PhysFrame<Size4KiB>> {
    frame_from_pfn(pfn).map_err(|_| PoolError::BadAddress)
}

fn block(pfn: u64) -> Result<PhysFrame<Size2MiB>> {
    let addr = pfn
        .checked_mul(4096)
        .and_then(|a| PhysAddr::try_new(a).ok())
        .ok_or(PoolError::BadAddress)?;
    PhysFrame::from_start_address(addr).map_err(|_| PoolError::BadAddress)
}

/// Empties `nr` records for a new pool.
///
/// # Safety
/// The records' contract, except that the records may hold anything.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_pool_init(records: *mut Block, nr: usize) -> i32 {
    if records.is_null() {
        return PoolError::BadAddress.code();
    }
    // SAFETY: forwarded from the caller; any bytes are overwritten.
    let blocks = unsafe { core::slice::from_raw_parts_mut(records, nr) };
    Pool::new(blocks, 0);
    0
}

/// Takes the 2 MiB block at page frame `pfn` out of the direct map with one
/// kernel-wide flush and adds its pages, all dirty, to the pool.
///
/// # Safety
/// The records' contract; the block is the caller's, fresh from the
/// allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_pool_add_block(records: *mut Block, nr: usize, pfn: u64) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_pool(records, nr, 0, |pool| {
            pool.add_block(&mut KernelPoolHw, block(pfn)?)
        })
    }
}

/// Hands out a zeroed page of the pool in `*pfn`; `Empty` when none is free.
///
/// # Safety
/// The records' contract; `pfn` is null or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_pool_alloc(records: *mut Block, nr: usize, pfn: *mut u64) -> i32 {
    // Refused before a page is taken that nobody could be told of.
    if pfn.is_null() {
        return PoolError::BadAddress.code();
    }
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_pool(records, nr, 0, |pool| {
            let frame = pool.alloc(&mut KernelPoolHw)?.ok_or(PoolError::Empty)?;
            // SAFETY (the enclosing block's): `pfn` is valid by the contract.
            put(pfn, pfn_of(frame))
        })
    }
}

/// Takes back page `pfn`, which a file held; it stays out of the direct map.
///
/// # Safety
/// The records' contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_pool_free(records: *mut Block, nr: usize, pfn: u64) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_pool(records, nr, 0, |pool| pool.free(page(pfn)?)) }
}

/// Page `pfn` of the pool is poisoned: never handed out, nor its block given
/// back.
///
/// # Safety
/// The records' contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_pool_poison(records: *mut Block, nr: usize, pfn: u64) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe { with_pool(records, nr, 0, |pool| pool.poison(page(pfn)?)) }
}

/// Gives back one block no file holds, zeroed and in the direct map, in
/// `*pfn`, if more than `limit` are idle (under memory pressure, pass 0);
/// `Empty` otherwise. The caller frees it to the page allocator.
///
/// # Safety
/// The records' contract; `pfn` is null or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_pool_release(
    records: *mut Block,
    nr: usize,
    limit: usize,
    pfn: *mut u64,
) -> i32 {
    // Refused before anything changes: a block given back and not reported
    // would be lost.
    if pfn.is_null() {
        return PoolError::BadAddress.code();
    }
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_pool(records, nr, limit, |pool| {
            let base = pool
                .release(&mut KernelPoolHw, false)?
                .ok_or(PoolError::Empty)?;
            // SAFETY (the enclosing block's): `pfn` is valid by the contract.
            put(pfn, block_pfn(base))
        })
    }
}

/// The pool's counts, for debugfs.
///
/// # Safety
/// The records' contract; `stats` is null or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_pool_stats(
    records: *mut Block,
    nr: usize,
    stats: *mut PoolStats,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_pool(records, nr, 0, |pool| {
            // SAFETY (the enclosing block's): `stats` is valid by the contract.
            put(stats, pool.stats())
        })
    }
}
