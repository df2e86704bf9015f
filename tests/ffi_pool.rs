// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The block pool's C ABI (src/ffi/pool.rs) end to end, with the simulated
//! direct map standing in for the kernel's pool callbacks: records kept by
//! the caller between calls, one flush per block, zeroed pages, the codes C
//! sees for misuse.

use std::sync::Mutex;

use gmem_kmap::ffi::*;
use gmem_kmap::pool::{Block, PoolError, PoolHardware, PoolStats};
use gmem_kmap::sim::DirectMapSim;
use gmem_kmap::{frame_from_pfn, pfn_of};
use x86_64::PhysAddr;
use x86_64::structures::paging::PhysFrame;

const NR_BLOCKS: usize = 4;

static DM: Mutex<Option<DirectMapSim>> = Mutex::new(None);

fn with_dm<R>(f: impl FnOnce(&mut DirectMapSim) -> R) -> R {
    f(DM.lock().unwrap().as_mut().expect("direct map set up"))
}

fn block_of(pfn: u64) -> PhysFrame<x86_64::structures::paging::Size2MiB> {
    PhysFrame::from_start_address(PhysAddr::new(pfn << 12)).expect("2 MiB aligned")
}

#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_pool_block_absent(pfn: u64) -> i32 {
    with_dm(|dm| dm.block_absent(block_of(pfn)).map_or(-12, |()| 0))
}

#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_pool_block_present(pfn: u64) {
    with_dm(|dm| dm.block_present(block_of(pfn)))
}

#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_pool_flush_all(start: u64, end: u64) {
    assert_eq!(end - start, 512, "one block per flush");
    with_dm(|dm| dm.flush_all_range(PhysAddr::new(start << 12), PhysAddr::new(end << 12)))
}

#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_pool_zero(pfn: u64) -> i32 {
    with_dm(|dm| dm.zero(frame_from_pfn(pfn).unwrap()).map_or(-12, |()| 0))
}

// The window's callbacks: the pool never calls them.
#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_flush_local(_: u64) {
    unreachable!()
}
#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_warn(_: i32) {
    unreachable!()
}
#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_direct_map_set(_: u64, _: bool) {
    unreachable!()
}
#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_flush_all(_: u64) {
    unreachable!()
}

fn stats(records: &mut [Block]) -> PoolStats {
    let mut s = PoolStats::default();
    // SAFETY: `records` and `s` are valid and exclusive for the call.
    let r = unsafe { gmem_pool_stats(records.as_mut_ptr(), records.len(), &mut s) };
    assert_eq!(r, 0);
    s
}

#[test]
fn c_abi_of_the_pool() {
    *DM.lock().unwrap() = Some(DirectMapSim::new(NR_BLOCKS));
    // Garbage in the records: init must clear it.
    let mut records = vec![Block::default(); 2];
    let (r, n) = (records.as_mut_ptr(), records.len());
    // SAFETY: every pointer below is valid for its call, or null on purpose.
    unsafe {
        assert_eq!(
            gmem_pool_init(std::ptr::null_mut(), 2),
            PoolError::BadAddress.code()
        );
        assert_eq!(gmem_pool_init(r, n), 0);

        // A block's pages: dirty from its former owner.
        let block = DirectMapSim::block(1);
        let first = pfn_of(PhysFrame::containing_address(block.start_address()));
        with_dm(|dm| {
            for i in 0..512 {
                dm.write(frame_from_pfn(first + i).unwrap(), 0xdead);
            }
        });
        assert_eq!(
            gmem_pool_add_block(r, n, first + 1),
            PoolError::BadAddress.code()
        );
        assert_eq!(gmem_pool_add_block(r, n, first), 0);
        assert_eq!(
            gmem_pool_add_block(r, n, first),
            PoolError::Duplicate.code()
        );
        with_dm(|dm| {
            assert_eq!((dm.flushes, dm.splits), (1, 0));
            assert!(dm.is_large(1) && !dm.is_mapped(frame_from_pfn(first).unwrap()));
        });

        let mut pfn = 0;
        assert_eq!(
            gmem_pool_alloc(r, n, std::ptr::null_mut()),
            PoolError::BadAddress.code()
        );
        let mut got = Vec::new();
        for _ in 0..512 {
            assert_eq!(gmem_pool_alloc(r, n, &mut pfn), 0);
            assert_eq!(
                with_dm(|dm| dm.content(frame_from_pfn(pfn).unwrap())),
                0,
                "zeroed"
            );
            got.push(pfn);
        }
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), 512, "no page handed out twice");
        assert_eq!(gmem_pool_alloc(r, n, &mut pfn), PoolError::Empty.code());
        assert_eq!(stats(&mut records).held, 512);

        // Misuse: not the pool's, not held.
        assert_eq!(
            gmem_pool_free(r, n, first + 512),
            PoolError::NotInPool.code()
        );
        for &p in &got {
            with_dm(|dm| dm.write(frame_from_pfn(p).unwrap(), 0xbeef));
            assert_eq!(gmem_pool_free(r, n, p), 0);
        }
        assert_eq!(gmem_pool_free(r, n, first), PoolError::NotHeld.code());

        // Within the limit the block stays; beyond it (pressure: limit 0)
        // it goes back, zeroed and mapped by one large entry.
        let mut base = 0;
        assert_eq!(
            gmem_pool_release(r, n, 1, &mut base),
            PoolError::Empty.code()
        );
        assert_eq!(
            gmem_pool_release(r, n, 0, std::ptr::null_mut()),
            PoolError::BadAddress.code()
        );
        assert_eq!(gmem_pool_release(r, n, 0, &mut base), 0);
        assert_eq!(base, first);
        with_dm(|dm| {
            assert!(dm.is_large(1));
            for i in 0..512 {
                let f = frame_from_pfn(first + i).unwrap();
                assert!(dm.is_mapped(f) && dm.content(f) == 0, "page {i}");
            }
        });
        assert_eq!(stats(&mut records), PoolStats::default());

        // A poisoned page keeps its block out for good.
        assert_eq!(gmem_pool_add_block(r, n, first), 0);
        assert_eq!(gmem_pool_poison(r, n, first + 7), 0);
        assert_eq!(
            gmem_pool_release(r, n, 0, &mut base),
            PoolError::Empty.code()
        );
        assert_eq!(stats(&mut records).poisoned, 1);
    }
}
