// SPDX-License-Identifier: GPL-2.0 OR MIT
//! A direct map with 2 MiB and 4 KiB entries, for the block pool's model
//! tests: it counts the splits of large entries and the kernel-wide
//! flushes, and keeps each frame's contents as a token (0: zeroed).
//!
//! As in 6.12, the direct map starts with a large entry per 2 MiB; a 4 KiB
//! change inside one splits it into 512 small entries, for good (6.12 never
//! merges them back); a change of a whole 2 MiB block keeps a large entry
//! large (CPA's `try_preserve_large_page()`).

use std::vec;
use std::vec::Vec;

use x86_64::PhysAddr;
use x86_64::structures::paging::{PhysFrame, Size2MiB, Size4KiB};

use crate::pool::{BLOCK_PAGES, PoolError, PoolHardware};
use crate::pte::pfn_of;

const WORDS: usize = BLOCK_PAGES / 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    /// One 2 MiB entry, present or not.
    Large { present: bool },
    /// 512 entries of 4 KiB, a bit per present one.
    Split { present: [u64; WORDS] },
}

/// The direct map of `nr_blocks` 2 MiB blocks of memory, from physical 0.
#[derive(Clone, Debug)]
pub struct DirectMapSim {
    regions: Vec<Region>,
    content: Vec<u64>,
    /// Large entries split into small ones.
    pub splits: u64,
    /// Kernel-wide flushes (one shootdown each).
    pub flushes: u64,
    /// Make the next `block_absent()` fail, as a split that needs memory.
    pub fail_next_absent: bool,
}

impl DirectMapSim {
    /// All memory mapped with large entries, zeroed.
    pub fn new(nr_blocks: usize) -> Self {
        Self {
            regions: vec![Region::Large { present: true }; nr_blocks],
            content: vec![0; nr_blocks * BLOCK_PAGES],
            splits: 0,
            flushes: 0,
            fail_next_absent: false,
        }
    }

    /// Block `n` as a frame.
    pub fn block(n: usize) -> PhysFrame<Size2MiB> {
        PhysFrame::containing_address(PhysAddr::new((n as u64) << 21))
    }

    /// Whether `frame`'s direct-map entry is present.
    pub fn is_mapped(&self, frame: PhysFrame<Size4KiB>) -> bool {
        let (r, i) = locate(frame);
        match self.regions[r] {
            Region::Large { present } => present,
            Region::Split { present } => present[i / 64] & (1 << (i % 64)) != 0,
        }
    }

    /// Whether block `n` is still mapped by one large entry.
    pub fn is_large(&self, n: usize) -> bool {
        matches!(self.regions[n], Region::Large { .. })
    }

    /// What `frame` holds: 0 when zeroed.
    pub fn content(&self, frame: PhysFrame<Size4KiB>) -> u64 {
        self.content[pfn(frame)]
    }

    /// A file writes `token` (not 0) into `frame`.
    pub fn write(&mut self, frame: PhysFrame<Size4KiB>, token: u64) {
        assert_ne!(token, 0, "0 stands for zeroed");
        self.content[pfn(frame)] = token;
    }

    /// The 4 KiB path: `frame`'s entry made absent, splitting its large
    /// entry if need be (no flush).
    pub fn page_absent(&mut self, frame: PhysFrame<Size4KiB>) {
        let (r, i) = locate(frame);
        if let Region::Large { present } = self.regions[r] {
            self.splits += 1;
            let all = if present { u64::MAX } else { 0 };
            self.regions[r] = Region::Split {
                present: [all; WORDS],
            };
        }
        if let Region::Split { present } = &mut self.regions[r] {
            present[i / 64] &= !(1 << (i % 64));
        }
    }

    fn set_block(&mut self, block: PhysFrame<Size2MiB>, on: bool) {
        let r = (block.start_address().as_u64() >> 21) as usize;
        self.regions[r] = match self.regions[r] {
            Region::Large { .. } => Region::Large { present: on },
            Region::Split { .. } => Region::Split {
                present: [if on { u64::MAX } else { 0 }; WORDS],
            },
        };
    }
}

impl PoolHardware for DirectMapSim {
    fn block_absent(&mut self, block: PhysFrame<Size2MiB>) -> Result<(), PoolError> {
        if std::mem::take(&mut self.fail_next_absent) {
            return Err(PoolError::Hardware);
        }
        self.set_block(block, false);
        Ok(())
    }

    fn block_present(&mut self, block: PhysFrame<Size2MiB>) {
        self.set_block(block, true);
    }

    fn flush_all_range(&mut self, _start: PhysAddr, _end: PhysAddr) {
        self.flushes += 1;
    }

    fn zero(&mut self, frame: PhysFrame<Size4KiB>) -> Result<(), PoolError> {
        self.content[pfn(frame)] = 0;
        Ok(())
    }
}

fn pfn(frame: PhysFrame<Size4KiB>) -> usize {
    pfn_of(frame) as usize
}

fn locate(frame: PhysFrame<Size4KiB>) -> (usize, usize) {
    let p = pfn(frame);
    (p / BLOCK_PAGES, p % BLOCK_PAGES)
}
