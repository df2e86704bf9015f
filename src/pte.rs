// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Page-table entries for window slots.
//!
//! The kernel owns the protection bits (`PAGE_KERNEL`, which depends on NX,
//! PTI, memory encryption, …) and hands them over once; the core checks them
//! and combines them with a frame for every mapping.

use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTableFlags, PhysFrame, Size4KiB};

use crate::error::{Error, Result};

/// Widest physical address x86-64 page tables can hold.
pub const MAX_PHYS_BITS: u8 = 52;

/// Narrowest physical address width accepted (no x86-64 CPU has fewer).
pub const MIN_PHYS_BITS: u8 = 32;

const PAGE_SHIFT: u32 = 12;

/// An x86-64 page-table entry for a window slot.
///
/// Only a [`PteTemplate`] makes one (or the simulator, reading its page
/// table back), so the hardware traits can take it as proof that the entry
/// is well-formed: present, kernel-only, 4 KiB, with a checked template's
/// protection and a frame below its physical address width. Which frame it
/// maps, and whether mapping it is right, is the window's business: the
/// type proves the form, not the authority. Raw bits cannot become one:
///
/// ```compile_fail,E0624
/// let pte = gmem_kmap::Pte::from_bits(0x8000_0000_0000_0167); // user page
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Pte(u64);

impl Pte {
    /// The empty (not present) entry.
    #[cfg(feature = "sim")]
    pub(crate) const NONE: Pte = Pte(0);

    /// Wraps raw bits; only the simulator may (the template builds its own).
    #[cfg_attr(not(feature = "sim"), expect(dead_code))]
    pub(crate) const fn from_bits(bits: u64) -> Self {
        Pte(bits)
    }

    /// The raw bits, as written to a page table.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether the entry is empty, i.e. `pte_none()`.
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The entry's flag bits.
    #[inline]
    pub fn flags(self) -> PageTableFlags {
        PageTableFlags::from_bits_truncate(self.0)
    }
}

/// Frame-number bits of a PTE for a physical address width.
const fn frame_mask(phys_bits: u8) -> u64 {
    ((1u64 << phys_bits) - 1) & !((1u64 << PAGE_SHIFT) - 1)
}

/// The checked `PAGE_KERNEL` bits and physical address width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PteTemplate {
    /// Every bit of the template that is not a frame bit.
    attrs: u64,
    /// Bits a frame's address may not have: beyond the width, or in-page.
    not_frame: u64,
    phys_bits: u8,
}

impl PteTemplate {
    /// Checks a kernel protection template.
    ///
    /// It must be present, writable, not user-accessible and not a large page
    /// (bit 7 is PAT in a 4 KiB entry, never set by `PAGE_KERNEL`), and it may
    /// not carry frame bits below `phys_bits`. Bits at or above `phys_bits`
    /// are kept: with memory encryption the kernel narrows the physical width
    /// and puts the encryption bit there.
    pub fn new(page_kernel: u64, phys_bits: u8) -> Result<Self> {
        if !(MIN_PHYS_BITS..=MAX_PHYS_BITS).contains(&phys_bits) {
            return Err(Error::BadTemplate);
        }
        if page_kernel & frame_mask(phys_bits) != 0 {
            return Err(Error::BadTemplate);
        }
        let flags = PageTableFlags::from_bits_retain(page_kernel);
        let required = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
        let forbidden = PageTableFlags::USER_ACCESSIBLE | PageTableFlags::HUGE_PAGE;
        if !flags.contains(required) || flags.intersects(forbidden) {
            return Err(Error::BadTemplate);
        }
        Ok(Self {
            attrs: page_kernel,
            not_frame: !frame_mask(phys_bits),
            phys_bits,
        })
    }

    /// The same protection without `_PAGE_GLOBAL`: for slots in page tables
    /// of a process's own, whose translations must not outlive a switch to
    /// another process's tables.
    #[inline]
    pub const fn without_global(self) -> Self {
        Self {
            attrs: self.attrs & !PageTableFlags::GLOBAL.bits(),
            ..self
        }
    }

    /// Whether entries built by this template are global.
    #[inline]
    pub const fn is_global(&self) -> bool {
        self.attrs & PageTableFlags::GLOBAL.bits() != 0
    }

    /// The physical address width the template was checked against.
    #[inline]
    pub fn phys_bits(&self) -> u8 {
        self.phys_bits
    }

    /// The entry mapping `frame` with the template's protection.
    #[inline]
    pub fn pte(&self, frame: PhysFrame<Size4KiB>) -> Result<Pte> {
        let addr = frame.start_address().as_u64();
        if addr & self.not_frame != 0 {
            return Err(Error::BadPfn);
        }
        Ok(Pte(addr | self.attrs))
    }

    /// The frame an entry built by this template points to.
    #[inline]
    pub fn frame(&self, pte: Pte) -> PhysFrame<Size4KiB> {
        let addr = pte.0 & !self.not_frame;
        // Bits 12..phys_bits only: aligned and below 2^52, so nothing truncates.
        PhysFrame::containing_address(PhysAddr::new_truncate(addr))
    }
}

/// The page frame number of `frame`: the inverse of [`frame_from_pfn`].
#[inline]
pub const fn pfn_of(frame: PhysFrame<Size4KiB>) -> u64 {
    frame.start_address().as_u64() >> PAGE_SHIFT
}

/// The frame with page frame number `pfn`, if x86-64 can address it at all.
#[inline]
pub fn frame_from_pfn(pfn: u64) -> Result<PhysFrame<Size4KiB>> {
    if pfn >= 1u64 << (MAX_PHYS_BITS as u32 - PAGE_SHIFT) {
        return Err(Error::BadPfn);
    }
    let addr = PhysAddr::try_new(pfn << PAGE_SHIFT).map_err(|_| Error::BadPfn)?;
    PhysFrame::from_start_address(addr).map_err(|_| Error::BadPfn)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x86-64 `__PAGE_KERNEL`: present, RW, accessed, dirty, global, NX.
    pub const PAGE_KERNEL: u64 = 0x8000_0000_0000_0163;

    #[test]
    fn template_builds_entries() {
        let t = PteTemplate::new(PAGE_KERNEL, 46).unwrap();
        let pte = t.pte(frame_from_pfn(0x1234).unwrap()).unwrap();
        assert_eq!(pte.bits(), 0x8000_0000_0123_4163);
        assert_eq!(t.frame(pte), frame_from_pfn(0x1234).unwrap());
        assert_eq!(pfn_of(t.frame(pte)), 0x1234);
        assert!(pte.flags().contains(PageTableFlags::NO_EXECUTE));
    }

    #[test]
    fn bad_templates_are_refused() {
        let bad = |bits, width| PteTemplate::new(bits, width);
        assert_eq!(bad(PAGE_KERNEL & !1, 46), Err(Error::BadTemplate)); // not present
        assert_eq!(bad(PAGE_KERNEL & !2, 46), Err(Error::BadTemplate)); // read-only
        assert_eq!(bad(PAGE_KERNEL | 4, 46), Err(Error::BadTemplate)); // user
        assert_eq!(bad(PAGE_KERNEL | 0x80, 46), Err(Error::BadTemplate)); // huge / PAT
        assert_eq!(bad(PAGE_KERNEL | 0x1000, 46), Err(Error::BadTemplate)); // frame bits
        assert_eq!(bad(PAGE_KERNEL, 31), Err(Error::BadTemplate));
        assert_eq!(bad(PAGE_KERNEL, 53), Err(Error::BadTemplate));
    }

    #[test]
    fn encryption_bit_above_the_physical_width_is_kept() {
        // SME: the kernel narrows x86_phys_bits to 43 and sets bit 47.
        let sme = PAGE_KERNEL | 1 << 47;
        let t = PteTemplate::new(sme, 43).unwrap();
        assert_eq!(
            t.pte(frame_from_pfn(1).unwrap()).unwrap().bits(),
            sme | 0x1000
        );
        assert_eq!(PteTemplate::new(sme, 48), Err(Error::BadTemplate));
    }

    #[test]
    fn pfn_beyond_the_width_is_refused() {
        let t = PteTemplate::new(PAGE_KERNEL, 40).unwrap();
        let last = (1u64 << (40 - 12)) - 1;
        assert!(t.pte(frame_from_pfn(last).unwrap()).is_ok());
        assert_eq!(t.pte(frame_from_pfn(last + 1).unwrap()), Err(Error::BadPfn));
        assert_eq!(frame_from_pfn(1 << 40), Err(Error::BadPfn));
        assert_eq!(frame_from_pfn(u64::MAX), Err(Error::BadPfn));
    }
}
