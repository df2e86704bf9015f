// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Model tests of the block pool (src/pool.rs) against the simulated direct
//! map with 2 MiB and 4 KiB entries (src/sim/direct_map.rs).
//!
//! Random sequences of what guest_memfd files do (populate, punch, close,
//! a page found poisoned) and of memory pressure run against a pool over a
//! page allocator of whole blocks. After every step:
//!
//! - no page is held by two files;
//! - a page is never in the direct map while a file holds it;
//! - a page a file got was zeroed (it may have held another file's data);
//! - a block back in the allocator is in the direct map and all zero;
//! - a poisoned page is never handed out again nor mapped again;
//! - kernel-wide flushes never exceed the blocks taken out;
//! - no large entry is ever split, every block being whole.

use std::collections::BTreeSet;

use gmem_kmap::pool::{BLOCK_PAGES, Block, Pool, PoolError};
use gmem_kmap::sim::DirectMapSim;
use gmem_kmap::{frame_from_pfn, pfn_of};
use proptest::prelude::*;
use x86_64::structures::paging::{PhysFrame, Size2MiB, Size4KiB};

const NR_BLOCKS: usize = 6;
const RECORDS: usize = 4;
const LIMIT: usize = 1;
const FILES: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Populate { file: usize, pages: usize },
    Punch { file: usize, pages: usize },
    Close { file: usize },
    Poison { file: usize, nth: usize },
    Pressure,
    FailNextRemoval,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..FILES, 1..700usize).prop_map(|(file, pages)| Op::Populate { file, pages }),
        3 => (0..FILES, 1..600usize).prop_map(|(file, pages)| Op::Punch { file, pages }),
        1 => (0..FILES).prop_map(|file| Op::Close { file }),
        1 => (0..FILES, 0..1000usize).prop_map(|(file, nth)| Op::Poison { file, nth }),
        1 => Just(Op::Pressure),
        1 => Just(Op::FailNextRemoval),
    ]
}

/// The page allocator, the files and what the test has seen.
struct World {
    dm: DirectMapSim,
    free_blocks: BTreeSet<usize>,
    files: [BTreeSet<u64>; FILES],
    poisoned: BTreeSet<u64>,
    blocks_added: u64,
    next_token: u64,
}

fn frame(pfn: u64) -> PhysFrame<Size4KiB> {
    frame_from_pfn(pfn).expect("a pfn of the test's memory")
}

fn block_no(block: PhysFrame<Size2MiB>) -> usize {
    (block.start_address().as_u64() >> 21) as usize
}

impl World {
    fn new() -> Self {
        Self {
            dm: DirectMapSim::new(NR_BLOCKS),
            free_blocks: (0..NR_BLOCKS).collect(),
            files: Default::default(),
            poisoned: BTreeSet::new(),
            blocks_added: 0,
            next_token: 1,
        }
    }

    /// Gives released blocks back to the allocator, checking them.
    fn drain(&mut self, pool: &mut Pool, pressure: bool) {
        while let Some(block) = pool.release(&mut self.dm, pressure).expect("zeroing works") {
            let n = block_no(block);
            for i in 0..BLOCK_PAGES as u64 {
                let f = frame((n * BLOCK_PAGES) as u64 + i);
                assert!(
                    self.dm.is_mapped(f),
                    "released page {} not mapped",
                    pfn_of(f)
                );
                assert_eq!(
                    self.dm.content(f),
                    0,
                    "released page {} not zero",
                    pfn_of(f)
                );
            }
            assert!(self.free_blocks.insert(n), "block {n} released twice");
        }
    }

    fn populate(&mut self, pool: &mut Pool, file: usize, pages: usize) {
        for _ in 0..pages {
            let got = match pool.alloc(&mut self.dm).expect("zeroing works") {
                Some(f) => f,
                None => {
                    let Some(&n) = self.free_blocks.iter().next() else {
                        return;
                    };
                    if !pool.has_room() {
                        return;
                    }
                    match pool.add_block(&mut self.dm, DirectMapSim::block(n)) {
                        Ok(()) => {
                            self.free_blocks.remove(&n);
                            self.blocks_added += 1;
                        }
                        Err(PoolError::Hardware) => {
                            // Nothing may be left out of the direct map.
                            for i in 0..BLOCK_PAGES as u64 {
                                let f = frame((n * BLOCK_PAGES) as u64 + i);
                                assert!(
                                    self.dm.is_mapped(f),
                                    "failed removal left {} out",
                                    pfn_of(f)
                                );
                            }
                            return;
                        }
                        Err(e) => panic!("add_block: {e:?}"),
                    }
                    continue;
                }
            };
            let p = pfn_of(got);
            assert_eq!(self.dm.content(got), 0, "page {p} handed out unzeroed");
            assert!(!self.poisoned.contains(&p), "poisoned page {p} handed out");
            for (i, f) in self.files.iter().enumerate() {
                assert!(
                    !f.contains(&p),
                    "page {p} handed out while file {i} holds it"
                );
            }
            self.files[file].insert(p);
            self.dm.write(got, self.next_token);
            self.next_token += 1;
        }
    }

    fn punch(&mut self, pool: &mut Pool, file: usize, pages: usize) {
        let gone: Vec<u64> = self.files[file].iter().copied().take(pages).collect();
        for p in gone {
            self.files[file].remove(&p);
            pool.free(frame(p)).expect("the file held it");
        }
        self.drain(pool, false);
    }

    fn check(&self, pool: &Pool) {
        let held: usize = self.files.iter().map(|f| f.len()).sum();
        let stats = pool.stats();
        assert_eq!(stats.held, held, "pool and files disagree");
        for f in &self.files {
            for &p in f {
                assert!(
                    !self.dm.is_mapped(frame(p)),
                    "held page {p} in the direct map"
                );
                assert!(pool.owns(frame(p)));
            }
        }
        for &p in &self.poisoned {
            assert!(
                !self.dm.is_mapped(frame(p)),
                "poisoned page {p} mapped again"
            );
        }
        assert!(
            self.dm.flushes <= self.blocks_added,
            "more flushes than blocks"
        );
        assert_eq!(self.dm.splits, 0, "a whole block was split");
        assert_eq!(
            stats.blocks + self.free_blocks.len(),
            NR_BLOCKS,
            "a block got lost"
        );
        let busy: BTreeSet<u64> = self
            .files
            .iter()
            .flatten()
            .chain(&self.poisoned)
            .map(|p| p / BLOCK_PAGES as u64)
            .collect();
        let idle = (0..NR_BLOCKS as u64)
            .filter(|b| !self.free_blocks.contains(&(*b as usize)) && !busy.contains(b))
            .count();
        assert_eq!(stats.idle, idle, "idle blocks miscounted");
        assert!(stats.idle <= LIMIT, "more idle blocks kept than the limit");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn pool_keeps_every_promise(ops in prop::collection::vec(op(), 1..60)) {
        let mut records = vec![Block::EMPTY; RECORDS];
        let mut pool = Pool::new(&mut records, LIMIT);
        let mut w = World::new();
        for op in ops {
            match op {
                Op::Populate { file, pages } => w.populate(&mut pool, file, pages),
                Op::Punch { file, pages } => w.punch(&mut pool, file, pages),
                Op::Close { file } => {
                    let n = w.files[file].len();
                    w.punch(&mut pool, file, n);
                }
                Op::Poison { file, nth } => {
                    let Some(&p) = w.files[file].iter().nth(nth % w.files[file].len().max(1)) else {
                        continue;
                    };
                    w.files[file].remove(&p);
                    pool.poison(frame(p)).expect("the pool's page");
                    w.poisoned.insert(p);
                }
                Op::Pressure => w.drain(&mut pool, true),
                Op::FailNextRemoval => w.dm.fail_next_absent = true,
            }
            w.check(&pool);
        }
        // Every file closed and pressure: only blocks with a poisoned page stay.
        for file in 0..FILES {
            let n = w.files[file].len();
            w.punch(&mut pool, file, n);
        }
        w.drain(&mut pool, true);
        w.check(&pool);
        let poisoned_blocks: BTreeSet<u64> = w.poisoned.iter().map(|p| p / BLOCK_PAGES as u64).collect();
        prop_assert_eq!(pool.stats().blocks, poisoned_blocks.len());
    }
}

/// A 2 MiB file page by page on the 4 KiB path (today's flag) against the
/// pool: 512 shootdowns and a split against one and none.
#[test]
fn pool_population_costs_one_flush_per_block() {
    let mut dm = DirectMapSim::new(2);
    for i in 0..BLOCK_PAGES as u64 {
        dm.page_absent(frame(i));
        dm.flushes += 1; // flush_tlb_kernel_range() per folio, as 6.12's zap
    }
    assert_eq!((dm.flushes, dm.splits), (512, 1));
    assert!(!dm.is_large(0));

    let mut dm = DirectMapSim::new(2);
    let mut records = vec![Block::EMPTY; 1];
    let mut pool = Pool::new(&mut records, 0);
    pool.add_block(&mut dm, DirectMapSim::block(1)).unwrap();
    for _ in 0..BLOCK_PAGES {
        let f = pool.alloc(&mut dm).unwrap().expect("a free page");
        assert!(!dm.is_mapped(f));
    }
    assert_eq!(pool.alloc(&mut dm).unwrap(), None, "512 pages, no more");
    assert_eq!((dm.flushes, dm.splits), (1, 0));
    assert!(dm.is_large(1));
}

/// Misuse is refused with nothing changed.
#[test]
fn pool_refuses_misuse() {
    let mut dm = DirectMapSim::new(2);
    let mut records = vec![Block::EMPTY; 1];
    let mut pool = Pool::new(&mut records, 0);
    assert_eq!(pool.free(frame(3)), Err(PoolError::NotInPool));
    pool.add_block(&mut dm, DirectMapSim::block(0)).unwrap();
    assert_eq!(
        pool.add_block(&mut dm, DirectMapSim::block(0)),
        Err(PoolError::Duplicate)
    );
    assert_eq!(
        pool.add_block(&mut dm, DirectMapSim::block(1)),
        Err(PoolError::Full)
    );
    assert!(
        dm.is_mapped(frame(BLOCK_PAGES as u64)),
        "a refused block stays mapped"
    );
    assert_eq!(pool.free(frame(3)), Err(PoolError::NotHeld));
    let f = pool.alloc(&mut dm).unwrap().unwrap();
    pool.free(f).unwrap();
    assert_eq!(pool.free(f), Err(PoolError::NotHeld), "freed twice");
    assert_eq!(dm.flushes, 1);
}
