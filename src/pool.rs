// SPDX-License-Identifier: GPL-2.0 OR MIT
//! A pool of pages already out of the direct map, carved from whole 2 MiB
//! blocks: the bookkeeping of guest_memfd population without a kernel-wide
//! TLB shootdown per page.
//!
//! Taking one 4 KiB page out of the direct map costs a shootdown and splits
//! the 2 MiB (or 1 GiB) mapping around it for good. A block taken out as a
//! unit keeps its large mapping (CPA preserves it when the whole range
//! changes) and costs one shootdown for 512 pages. The pool hands the
//! block's pages to files one at a time, takes them back, and gives a block
//! whose pages are all back to the page allocator again, as a whole.
//!
//! The pool keeps what the kernel cannot see for it:
//!
//! - which pages of which block a file holds, so that no page is handed out
//!   twice and a block returns only when none is held;
//! - which free pages hold a former owner's data (*dirty*): a page is zeroed
//!   before it is handed out, and a block's dirty pages before the block
//!   goes back into the direct map;
//! - which pages are poisoned: never handed out, and their block never goes
//!   back into the direct map.
//!
//! Storage is the caller's (`&mut [Block]`, one per block the pool may
//! hold), so that the core needs no allocator. The pool is not locked: the
//! caller serializes it (the `&mut`).

use x86_64::PhysAddr;
use x86_64::structures::paging::{PhysFrame, Size2MiB, Size4KiB};

/// Pages per block.
pub const BLOCK_PAGES: usize = 512;
/// Words of a page bitmap; `Block` spells it out for the C header.
const WORDS: usize = 8;
static_assertions::const_assert_eq!(WORDS * 64, BLOCK_PAGES);

/// Why the pool refused; nothing changed. The codes, distinct from the
/// window's [`Error`](crate::Error)s, are what the C ABI returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub enum PoolError {
    /// No record is free for another block.
    Full = -32,
    /// The block is in the pool already.
    Duplicate = -33,
    /// The page is not in a block of the pool.
    NotInPool = -34,
    /// The page is not held by a file.
    NotHeld = -35,
    /// The machine could not take the block out of the direct map (a split
    /// needed memory), or could not zero a page (no window slot).
    Hardware = -36,
    /// Only the C ABI: no page to hand out, or no block to give back.
    Empty = -37,
    /// Only the C ABI: a page frame or block address that cannot be one.
    BadAddress = -38,
}

impl PoolError {
    /// The code handed to C: negative, distinct per variant.
    pub const fn code(self) -> i32 {
        self as i32
    }
}

/// The pool's results.
pub type Result<T> = core::result::Result<T, PoolError>;

/// What the pool needs of the machine.
///
/// The kernel glue implements it with `set_direct_map_*_noflush` over the
/// block, `flush_tlb_kernel_range()` and a zeroing through the window; the
/// simulator implements it over a model direct map with 2 MiB and 4 KiB
/// entries.
pub trait PoolHardware {
    /// Makes the direct-map entries of the whole block absent, without a
    /// flush; a large mapping of it stays large.
    fn block_absent(&mut self, block: PhysFrame<Size2MiB>) -> Result<()>;
    /// Makes them present again (no flush: x86 does not cache non-present
    /// entries).
    fn block_present(&mut self, block: PhysFrame<Size2MiB>);
    /// Drops every CPU's translations of the direct map in `[start, end)`:
    /// one kernel-wide shootdown.
    fn flush_all_range(&mut self, start: PhysAddr, end: PhysAddr);
    /// Zeroes `frame`, which is out of the direct map (the window).
    fn zero(&mut self, frame: PhysFrame<Size4KiB>) -> Result<()>;
}

/// The pool's record of one block.
///
/// # Invariants
///
/// Every page of a block in use is in exactly one of: held by a file, free
/// clean, free dirty, poisoned. `held`, `dirty` and `poisoned` are disjoint,
/// and `nr_held` and `nr_poisoned` count the bits of theirs.
///
/// `tagged_base` is 0 for an unused record, else the block's physical
/// address with its lowest bit set (C sees the record, not an `Option`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Block {
    tagged_base: u64,
    /// Set bits of `held`, kept so that the hot paths do not count.
    nr_held: u32,
    /// Set bits of `poisoned`.
    nr_poisoned: u32,
    held: [u64; 8],
    dirty: [u64; 8],
    poisoned: [u64; 8],
}

/// Marks a record in use; a 2 MiB-aligned address has the bit clear.
const IN_USE: u64 = 1;

impl Block {
    /// An unused record.
    pub const EMPTY: Block = Block {
        tagged_base: 0,
        nr_held: 0,
        nr_poisoned: 0,
        held: [0; WORDS],
        dirty: [0; WORDS],
        poisoned: [0; WORDS],
    };

    fn base(&self) -> Option<PhysFrame<Size2MiB>> {
        if self.tagged_base & IN_USE == 0 {
            return None;
        }
        let addr = PhysAddr::try_new(self.tagged_base & !IN_USE).ok()?;
        PhysFrame::from_start_address(addr).ok()
    }

    fn in_use(block: PhysFrame<Size2MiB>) -> Block {
        Block {
            tagged_base: block.start_address().as_u64() | IN_USE,
            dirty: [u64::MAX; WORDS],
            ..Block::EMPTY
        }
    }

    fn count(bits: &[u64; WORDS]) -> usize {
        bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    // No panic path (the kernel links the core): an index past the block
    // reads as clear and is never set.
    fn test(bits: &[u64; WORDS], i: usize) -> bool {
        bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set(bits: &mut [u64; WORDS], i: usize, on: bool) {
        if let Some(w) = bits.get_mut(i / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    fn held_count(&self) -> usize {
        self.nr_held as usize
    }

    /// Free pages that can be handed out: neither held nor poisoned.
    fn free_count(&self) -> usize {
        BLOCK_PAGES
            .saturating_sub(self.held_count())
            .saturating_sub(self.nr_poisoned as usize)
    }

    /// The first page neither held nor poisoned, a word at a time.
    fn first_free(&self) -> Option<usize> {
        self.held
            .iter()
            .zip(&self.poisoned)
            .enumerate()
            .find_map(|(w, (h, p))| {
                let taken = h | p;
                (taken != u64::MAX).then(|| w * 64 + taken.trailing_ones() as usize)
            })
    }

    fn set_held(&mut self, i: usize, on: bool) {
        if Self::test(&self.held, i) != on {
            Self::set(&mut self.held, i, on);
            self.nr_held = Self::count(&self.held) as u32;
        }
    }

    fn set_poisoned(&mut self, i: usize) {
        if !Self::test(&self.poisoned, i) {
            Self::set(&mut self.poisoned, i, true);
            self.nr_poisoned = Self::count(&self.poisoned) as u32;
        }
    }

    fn page(&self, i: usize) -> Option<PhysFrame<Size4KiB>> {
        let base = self.base()?.start_address().as_u64();
        let addr = PhysAddr::try_new(base + (i as u64) * 4096).ok()?;
        Some(PhysFrame::containing_address(addr))
    }

    /// `frame`'s index in the block, if it is one of its pages: one compare
    /// per record, since every free takes a scan of them.
    fn index_of(&self, frame: PhysFrame<Size4KiB>) -> Option<usize> {
        const BLOCK_MASK: u64 = (BLOCK_PAGES as u64) * 4096 - 1;
        let addr = frame.start_address().as_u64();
        (self.tagged_base == (addr & !BLOCK_MASK) | IN_USE)
            .then_some(((addr & BLOCK_MASK) / 4096) as usize)
    }
}

/// Counts a caller shows (debugfs) and tests check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct PoolStats {
    /// Blocks out of the direct map.
    pub blocks: usize,
    /// Pages files hold.
    pub held: usize,
    /// Pages the pool can hand out.
    pub free: usize,
    /// Poisoned pages, kept out for good.
    pub poisoned: usize,
    /// Blocks no file holds a page of and none poisoned: those that could
    /// go back to the page allocator.
    pub idle: usize,
}

/// Pages out of the direct map, in whole blocks.
pub struct Pool<'a> {
    blocks: &'a mut [Block],
    limit: usize,
}

impl<'a> Pool<'a> {
    /// A pool that may hold `limit` blocks beyond those files need, with one
    /// record per block it may ever hold.
    pub fn new(blocks: &'a mut [Block], limit: usize) -> Self {
        for b in blocks.iter_mut() {
            *b = Block::EMPTY;
        }
        Self { blocks, limit }
    }

    /// The pool kept in `blocks` by an earlier [`Pool::new`]: how the C ABI
    /// gets it back on every call. Records that are not a pool's read as
    /// wrong bookkeeping, never as undefined behaviour.
    pub fn from_records(blocks: &'a mut [Block], limit: usize) -> Self {
        Self { blocks, limit }
    }

    /// The counts now.
    pub fn stats(&self) -> PoolStats {
        let mut s = PoolStats::default();
        for b in self.blocks.iter().filter(|b| b.base().is_some()) {
            s.blocks += 1;
            s.held += b.held_count();
            s.free += b.free_count();
            s.poisoned += b.nr_poisoned as usize;
            s.idle += usize::from(b.nr_held == 0 && b.nr_poisoned == 0);
        }
        s
    }

    /// Whether a record is free for another block.
    pub fn has_room(&self) -> bool {
        self.blocks.iter().any(|b| b.base().is_none())
    }

    /// Takes `block`, fresh from the page allocator, out of the direct map
    /// with one shootdown. Its pages may hold anything: all are dirty.
    /// On error nothing changed.
    pub fn add_block<H: PoolHardware>(
        &mut self,
        hw: &mut H,
        block: PhysFrame<Size2MiB>,
    ) -> Result<()> {
        if self.holds(block) {
            return Err(PoolError::Duplicate);
        }
        let record = self
            .blocks
            .iter_mut()
            .find(|b| b.base().is_none())
            .ok_or(PoolError::Full)?;
        hw.block_absent(block)?;
        let start = block.start_address();
        hw.flush_all_range(start, PhysAddr::new_truncate(start.as_u64() + block.size()));
        *record = Block::in_use(block);
        Ok(())
    }

    /// Hands out a zeroed page, from the first block that has one (records
    /// fill from the front, so allocations pack into few blocks and the
    /// others empty and can go back), or `None` when no block has one.
    pub fn alloc<H: PoolHardware>(&mut self, hw: &mut H) -> Result<Option<PhysFrame<Size4KiB>>> {
        let Some(b) = self
            .blocks
            .iter_mut()
            .find(|b| b.tagged_base != 0 && b.free_count() > 0)
        else {
            return Ok(None);
        };
        let Some((i, frame)) = b.first_free().and_then(|i| Some((i, b.page(i)?))) else {
            return Ok(None);
        };
        if Block::test(&b.dirty, i) {
            hw.zero(frame)?;
            Block::set(&mut b.dirty, i, false);
        }
        b.set_held(i, true);
        Ok(Some(frame))
    }

    /// Takes back a page a file held; it stays out of the direct map, dirty.
    pub fn free(&mut self, frame: PhysFrame<Size4KiB>) -> Result<()> {
        let (b, i) = self.page_of(frame)?;
        if !Block::test(&b.held, i) {
            return Err(PoolError::NotHeld);
        }
        b.set_held(i, false);
        Block::set(&mut b.dirty, i, true);
        Ok(())
    }

    /// A page of the pool was found poisoned (held or free): it is never
    /// handed out again, and its block never returns to the direct map.
    pub fn poison(&mut self, frame: PhysFrame<Size4KiB>) -> Result<()> {
        let (b, i) = self.page_of(frame)?;
        b.set_held(i, false);
        Block::set(&mut b.dirty, i, false);
        b.set_poisoned(i);
        Ok(())
    }

    /// Whether `frame` belongs to a block of the pool.
    pub fn owns(&self, frame: PhysFrame<Size4KiB>) -> bool {
        self.blocks.iter().any(|b| b.index_of(frame).is_some())
    }

    /// Gives back one block no file uses, if the pool holds more free
    /// blocks than its limit or `pressure` asks for any: its dirty pages
    /// zeroed, back in the direct map as a whole, for the caller to free to
    /// the page allocator.
    pub fn release<H: PoolHardware>(
        &mut self,
        hw: &mut H,
        pressure: bool,
    ) -> Result<Option<PhysFrame<Size2MiB>>> {
        let idle = |b: &Block| b.tagged_base != 0 && b.nr_held == 0 && b.nr_poisoned == 0;
        let nr_idle = self.blocks.iter().filter(|b| idle(b)).count();
        if nr_idle == 0 || (!pressure && nr_idle <= self.limit) {
            return Ok(None);
        }
        let Some(b) = self.blocks.iter_mut().find(|b| idle(b)) else {
            return Ok(None);
        };
        let Some(base) = b.base() else {
            return Ok(None);
        };
        for i in 0..BLOCK_PAGES {
            if let (true, Some(page)) = (Block::test(&b.dirty, i), b.page(i)) {
                hw.zero(page)?;
                Block::set(&mut b.dirty, i, false);
            }
        }
        *b = Block::EMPTY;
        hw.block_present(base);
        Ok(Some(base))
    }

    fn holds(&self, block: PhysFrame<Size2MiB>) -> bool {
        self.blocks.iter().any(|b| b.base() == Some(block))
    }

    fn page_of(&mut self, frame: PhysFrame<Size4KiB>) -> Result<(&mut Block, usize)> {
        self.blocks
            .iter_mut()
            .find_map(|b| b.index_of(frame).map(|i| (b, i)))
            .ok_or(PoolError::NotInPool)
    }
}
