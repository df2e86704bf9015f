// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The simulated MMU: page table, per-CPU TLBs, physical memory, counters.

use std::boxed::Box;
use std::collections::HashMap;
use std::vec::Vec;

use x86_64::VirtAddr;
use x86_64::structures::paging::{PageTableFlags, PhysFrame, Size4KiB};

use super::{CpuHw, DIRECT_MAP_BASE, PAGE_KERNEL, PHYS_BITS};
use crate::pte::{Pte, PteTemplate, frame_from_pfn};

const PAGE: u64 = 4096;

/// Events that cost time on real hardware.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// PTE writes outside the direct map (window slots).
    pub slot_pte_writes: u64,
    /// PTE writes inside the direct map.
    pub direct_map_writes: u64,
    /// Single-address flushes of the local TLB.
    pub local_flushes: u64,
    /// Flushes broadcast to every CPU (one shootdown each).
    pub global_flushes: u64,
    /// Interrupts sent to other CPUs by global flushes.
    pub ipis: u64,
}

/// Why an access did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// No present translation: the access would page-fault.
    NotMapped(VirtAddr),
    /// The translation points at a frame the machine does not have.
    NoSuchFrame(VirtAddr),
    /// The access spans two pages (the simulator keeps accesses in one page).
    CrossesPage(VirtAddr),
}

/// A machine of `nr_cpus` CPUs sharing one kernel page table.
pub struct Machine {
    template: PteTemplate,
    page_table: HashMap<u64, Pte>,
    tlbs: Vec<HashMap<u64, Pte>>,
    memory: Vec<Box<[u8; PAGE as usize]>>,
    counters: Counters,
}

impl Machine {
    /// `nr_cpus` CPUs and `nr_frames` zeroed frames (pfn 0 up), none of which
    /// is in the direct map, as for a NO_DIRECT_MAP guest_memfd.
    pub fn new(nr_cpus: u32, nr_frames: usize) -> Self {
        Self {
            template: PteTemplate::new(PAGE_KERNEL, PHYS_BITS).expect("PAGE_KERNEL is valid"),
            page_table: HashMap::new(),
            tlbs: (0..nr_cpus).map(|_| HashMap::new()).collect(),
            memory: (0..nr_frames)
                .map(|_| Box::new([0; PAGE as usize]))
                .collect(),
            counters: Counters::default(),
        }
    }

    /// The protection template the machine's kernel hands to the core.
    pub fn template(&self) -> PteTemplate {
        self.template
    }

    /// Number of CPUs.
    pub fn nr_cpus(&self) -> u32 {
        self.tlbs.len() as u32
    }

    /// Number of physical frames.
    pub fn nr_frames(&self) -> usize {
        self.memory.len()
    }

    /// Frame number `pfn`.
    pub fn frame(&self, pfn: usize) -> PhysFrame<Size4KiB> {
        assert!(pfn < self.nr_frames(), "pfn {pfn} out of range");
        frame_from_pfn(pfn as u64).expect("small pfn")
    }

    /// The address of `frame` in the direct map.
    pub fn direct_map_addr(frame: PhysFrame<Size4KiB>) -> VirtAddr {
        VirtAddr::new(DIRECT_MAP_BASE + frame.start_address().as_u64())
    }

    /// Whether `addr` lies in the direct map.
    pub fn in_direct_map(addr: VirtAddr) -> bool {
        (DIRECT_MAP_BASE..DIRECT_MAP_BASE + (1 << PHYS_BITS)).contains(&addr.as_u64())
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The hardware as seen from `cpu`.
    pub fn cpu(&mut self, cpu: u32) -> CpuHw<'_> {
        assert!(cpu < self.nr_cpus(), "cpu {cpu} out of range");
        CpuHw::new(self, cpu)
    }

    /// The frame's contents, read physically (no MMU involved).
    pub fn frame_bytes(&self, frame: PhysFrame<Size4KiB>) -> &[u8; PAGE as usize] {
        &self.memory[pfn_index(frame)]
    }

    /// The frame's contents, writable physically (no MMU involved).
    pub fn frame_bytes_mut(&mut self, frame: PhysFrame<Size4KiB>) -> &mut [u8; PAGE as usize] {
        &mut self.memory[pfn_index(frame)]
    }

    /// The page-table entry mapping `addr`.
    pub fn pte(&self, addr: VirtAddr) -> Pte {
        self.page_table
            .get(&page_of(addr))
            .copied()
            .unwrap_or(Pte::NONE)
    }

    /// The translation `cpu`'s TLB holds for `addr`, if any.
    pub fn tlb_entry(&self, cpu: u32, addr: VirtAddr) -> Option<Pte> {
        self.tlbs[cpu as usize].get(&page_of(addr)).copied()
    }

    /// Every translation `cpu`'s TLB holds, as (page address, entry).
    pub fn tlb_entries(&self, cpu: u32) -> impl Iterator<Item = (VirtAddr, Pte)> + '_ {
        self.tlbs[cpu as usize]
            .iter()
            .map(|(page, pte)| (VirtAddr::new(*page), *pte))
    }

    /// Loads `buf.len()` bytes at `addr` as `cpu` would.
    pub fn read(&mut self, cpu: u32, addr: VirtAddr, buf: &mut [u8]) -> Result<(), Fault> {
        let (idx, off) = self.translate(cpu, addr, buf.len())?;
        buf.copy_from_slice(&self.memory[idx][off..off + buf.len()]);
        Ok(())
    }

    /// Stores `data` at `addr` as `cpu` would.
    pub fn write(&mut self, cpu: u32, addr: VirtAddr, data: &[u8]) -> Result<(), Fault> {
        let (idx, off) = self.translate(cpu, addr, data.len())?;
        self.memory[idx][off..off + data.len()].copy_from_slice(data);
        Ok(())
    }

    /// TLB first; on a miss, walk the page table and fill the TLB.
    fn translate(&mut self, cpu: u32, addr: VirtAddr, len: usize) -> Result<(usize, usize), Fault> {
        let page = page_of(addr);
        let off = (addr.as_u64() - page) as usize;
        if off + len > PAGE as usize {
            return Err(Fault::CrossesPage(addr));
        }
        let tlb = &mut self.tlbs[cpu as usize];
        let pte = match tlb.get(&page) {
            Some(pte) => *pte,
            None => {
                let pte = self.page_table.get(&page).copied().unwrap_or(Pte::NONE);
                if !pte.flags().contains(PageTableFlags::PRESENT) {
                    return Err(Fault::NotMapped(addr));
                }
                tlb.insert(page, pte);
                pte
            }
        };
        let idx = pfn_index(self.template.frame(pte));
        if idx >= self.memory.len() {
            return Err(Fault::NoSuchFrame(addr));
        }
        Ok((idx, off))
    }

    pub(super) fn write_pte(&mut self, addr: VirtAddr, pte: Pte) {
        if Self::in_direct_map(addr) {
            self.counters.direct_map_writes += 1;
        } else {
            self.counters.slot_pte_writes += 1;
        }
        if pte.is_none() {
            self.page_table.remove(&page_of(addr));
        } else {
            self.page_table.insert(page_of(addr), pte);
        }
    }

    pub(super) fn flush_local(&mut self, cpu: u32, addr: VirtAddr) {
        self.counters.local_flushes += 1;
        self.tlbs[cpu as usize].remove(&page_of(addr));
    }

    pub(super) fn flush_all(&mut self, addr: VirtAddr) {
        self.counters.global_flushes += 1;
        self.counters.ipis += u64::from(self.nr_cpus()) - 1;
        for tlb in &mut self.tlbs {
            tlb.remove(&page_of(addr));
        }
    }
}

fn page_of(addr: VirtAddr) -> u64 {
    addr.as_u64() & !(PAGE - 1)
}

fn pfn_index(frame: PhysFrame<Size4KiB>) -> usize {
    (frame.start_address().as_u64() / PAGE) as usize
}
