// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The simulated MMU: page table, per-CPU TLBs, physical memory, counters.

use std::boxed::Box;
use std::collections::HashMap;
use std::vec::Vec;

use x86_64::structures::paging::{PageTableFlags, PhysFrame, Size4KiB};

use super::{AddressMap, CpuHw, PAGE_KERNEL, PHYS_BITS};
use crate::addr::{KernelAddr, PagingDepth};
use crate::error::Error;
use crate::geometry::{CPU_STRIDE, Layout};
use crate::pte::{Pte, PteTemplate, frame_from_pfn, pfn_of};
use crate::window::Window;

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
    NotMapped(KernelAddr),
    /// The translation points at a frame the machine does not have.
    NoSuchFrame(KernelAddr),
    /// The access spans two pages (the simulator keeps accesses in one page).
    CrossesPage(KernelAddr),
    /// The address is not canonical at the machine's paging depth: #GP.
    NonCanonical(KernelAddr),
}

/// A process whose page tables a CPU may load; 0 is the kernel's own (a
/// kernel thread, an idle CPU).
pub type MmId = u32;

/// A machine of `nr_cpus` CPUs sharing one kernel page table.
///
/// Each CPU runs in the page tables of one process ([`MmId`]), which all
/// map the kernel half alike but for the private window's range: there each
/// process has entries of its own (the mermap model), and a slot entry a
/// CPU writes goes into the tables of the process it runs. Switching a CPU
/// to another process's tables (a CR3 write without PCID) drops its
/// non-global translations; global ones (`_PAGE_GLOBAL`, as `PAGE_KERNEL`
/// has without PTI) survive it.
pub struct Machine {
    depth: PagingDepth,
    map: AddressMap,
    template: PteTemplate,
    page_table: HashMap<u64, Pte>,
    tlbs: Vec<HashMap<u64, Pte>>,
    current_mm: Vec<MmId>,
    /// The private window's range, `[start, end)`.
    private_range: (u64, u64),
    /// Each process's own entries in that range.
    local_tables: HashMap<MmId, HashMap<u64, Pte>>,
    memory: Vec<Box<[u8; PAGE as usize]>>,
    counters: Counters,
    warnings: Vec<Error>,
}

impl Machine {
    /// `nr_cpus` CPUs at paging `depth` and `nr_frames` zeroed frames (pfn 0
    /// up), none of which is in the direct map, as for a NO_DIRECT_MAP
    /// guest_memfd.
    pub fn new(depth: PagingDepth, nr_cpus: u32, nr_frames: usize) -> Self {
        let map = AddressMap::of(depth);
        let private = map.private_window_base();
        let size = u64::from(nr_cpus) * CPU_STRIDE;
        Self {
            depth,
            map,
            template: PteTemplate::new(PAGE_KERNEL, PHYS_BITS).expect("PAGE_KERNEL is valid"),
            page_table: HashMap::new(),
            tlbs: (0..nr_cpus).map(|_| HashMap::new()).collect(),
            current_mm: std::vec![0; nr_cpus as usize],
            private_range: (private, private + size),
            local_tables: HashMap::new(),
            memory: (0..nr_frames)
                .map(|_| Box::new([0; PAGE as usize]))
                .collect(),
            counters: Counters::default(),
            warnings: Vec::new(),
        }
    }

    /// The paging depth the machine runs at.
    pub fn depth(&self) -> PagingDepth {
        self.depth
    }

    /// Where the kernel puts things at the machine's depth.
    pub fn address_map(&self) -> AddressMap {
        self.map
    }

    /// The window a kernel on this machine would set up: every CPU's
    /// shared slots at the bottom of vmalloc space, mapped with the
    /// machine's template, and its private slots in the PGD entry below the
    /// LDT remap's, mapped without `_PAGE_GLOBAL`.
    pub fn window(&self) -> Window {
        self.shared_window()
            .with_private(self.private_layout())
            .expect("the private window is apart from the shared one")
    }

    /// [`window`](Self::window) without its private placement.
    pub fn shared_window(&self) -> Window {
        let layout = Layout::new(self.map.window_base(), self.nr_cpus(), self.depth)
            .expect("the window fits vmalloc space at both depths");
        Window::new(layout, self.template)
    }

    /// Where the private slots are.
    pub fn private_layout(&self) -> Layout {
        Layout::new(self.private_range.0, self.nr_cpus(), self.depth)
            .expect("the private window fits its PGD entry at both depths")
    }

    /// An address the machine's kernel could use, checked at its depth.
    pub fn addr(&self, addr: u64) -> KernelAddr {
        KernelAddr::new(addr, self.depth)
            .unwrap_or_else(|_| panic!("{addr:#x} is not a kernel address at {:?}", self.depth))
    }

    /// What the core reported through [`SlotHardware::warn`](crate::SlotHardware::warn).
    pub fn warnings(&self) -> &[Error] {
        &self.warnings
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
    pub fn direct_map_addr(&self, frame: PhysFrame<Size4KiB>) -> KernelAddr {
        self.addr(self.map.direct_map + frame.start_address().as_u64())
    }

    /// Whether `addr` lies in the direct map.
    pub fn in_direct_map(&self, addr: KernelAddr) -> bool {
        let start = self.map.direct_map;
        (start..start + (1 << PHYS_BITS)).contains(&addr.as_u64())
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
    pub fn pte(&self, addr: KernelAddr) -> Pte {
        self.page_table
            .get(&page_of(addr))
            .copied()
            .unwrap_or(Pte::NONE)
    }

    /// The translation `cpu`'s TLB holds for `addr`, if any.
    pub fn tlb_entry(&self, cpu: u32, addr: KernelAddr) -> Option<Pte> {
        self.tlbs[cpu as usize].get(&page_of(addr)).copied()
    }

    /// Every translation `cpu`'s TLB holds, as (page address, entry).
    pub fn tlb_entries(&self, cpu: u32) -> impl Iterator<Item = (KernelAddr, Pte)> + '_ {
        self.tlbs[cpu as usize]
            .iter()
            .map(|(page, pte)| (self.addr(*page), *pte))
    }

    /// Whether `page` is a private slot page, kept in per-process tables.
    fn per_process(&self, page: u64) -> bool {
        (self.private_range.0..self.private_range.1).contains(&page)
    }

    /// The entry mapping `page` in the tables `cpu` has loaded.
    fn lookup(&self, cpu: u32, page: u64) -> Pte {
        let table = if self.per_process(page) {
            self.local_tables.get(&self.current_mm(cpu))
        } else {
            Some(&self.page_table)
        };
        table
            .and_then(|t| t.get(&page))
            .copied()
            .unwrap_or(Pte::NONE)
    }

    /// The slot entry at `addr` as `cpu` sees it (its process's, for a
    /// private slot).
    pub fn slot_pte(&self, cpu: u32, addr: KernelAddr) -> Pte {
        self.lookup(cpu, page_of(addr))
    }

    /// Writes the slot entry at `addr` from `cpu`: into its process's tables
    /// for a private slot.
    pub fn write_slot_pte(&mut self, cpu: u32, addr: KernelAddr, pte: Pte) {
        if !self.per_process(page_of(addr)) {
            return self.write_pte(addr, pte);
        }
        self.counters.slot_pte_writes += 1;
        let table = self.local_tables.entry(self.current_mm(cpu)).or_default();
        if pte.is_none() {
            table.remove(&page_of(addr));
        } else {
            table.insert(page_of(addr), pte);
        }
    }

    /// Drops the private window's translations from every CPU running `mm`
    /// (one IPI each): what the private placement must do before a page
    /// leaves its file, since another CPU of the same process may have
    /// cached its slot.
    pub fn flush_window_mm(&mut self, mm: MmId) {
        let (start, end) = self.private_range;
        for cpu in 0..self.nr_cpus() {
            if self.current_mm(cpu) == mm {
                self.counters.ipis += 1;
                self.tlbs[cpu as usize].retain(|page, _| !(start..end).contains(page));
            }
        }
    }

    /// The process whose page tables `cpu` has loaded.
    pub fn current_mm(&self, cpu: u32) -> MmId {
        self.current_mm[cpu as usize]
    }

    /// `cpu` loads the page tables of `mm`: unless it had them loaded
    /// already, its TLB keeps only global translations.
    pub fn switch_mm(&mut self, cpu: u32, mm: MmId) {
        if self.current_mm[cpu as usize] == mm {
            return;
        }
        self.current_mm[cpu as usize] = mm;
        self.tlbs[cpu as usize].retain(|_, pte| pte.flags().contains(PageTableFlags::GLOBAL));
    }

    /// The pages `cpu` could translate now from the page tables it has
    /// loaded, in address order: what speculation may pick from.
    pub fn speculation_targets(&self, cpu: u32) -> Vec<KernelAddr> {
        assert!(cpu < self.nr_cpus(), "cpu {cpu} out of range");
        // The kernel page table, reachable from every process's tables, and
        // the process's own window entries.
        let own = self.local_tables.get(&self.current_mm(cpu));
        let mut pages: Vec<u64> = self
            .page_table
            .iter()
            .chain(own.into_iter().flatten())
            .filter(|(page, pte)| {
                pte.flags().contains(PageTableFlags::PRESENT) && self.lookup(cpu, **page) == **pte
            })
            .map(|(page, _)| *page)
            .collect();
        pages.sort_unstable();
        pages.into_iter().map(|p| self.addr(p)).collect()
    }

    /// Speculation: `cpu` caches the translation of `addr` if the page
    /// tables it has loaded map it, whether or not any instruction of it
    /// touches the address (a Spectre gadget's load that is never
    /// retired). It keeps the entry until a flush, as any other. Returns
    /// whether it cached one.
    pub fn speculate(&mut self, cpu: u32, addr: KernelAddr) -> bool {
        let page = page_of(addr);
        let pte = self.lookup(cpu, page);
        if !pte.flags().contains(PageTableFlags::PRESENT) {
            return false;
        }
        self.tlbs[cpu as usize].insert(page, pte);
        true
    }

    /// Loads `buf.len()` bytes at `addr` as `cpu` would.
    pub fn read(&mut self, cpu: u32, addr: KernelAddr, buf: &mut [u8]) -> Result<(), Fault> {
        let (idx, off) = self.translate(cpu, addr, buf.len())?;
        buf.copy_from_slice(&self.memory[idx][off..off + buf.len()]);
        Ok(())
    }

    /// Stores `data` at `addr` as `cpu` would.
    pub fn write(&mut self, cpu: u32, addr: KernelAddr, data: &[u8]) -> Result<(), Fault> {
        let (idx, off) = self.translate(cpu, addr, data.len())?;
        self.memory[idx][off..off + data.len()].copy_from_slice(data);
        Ok(())
    }

    /// TLB first; on a miss, walk the page table and fill the TLB.
    fn translate(
        &mut self,
        cpu: u32,
        addr: KernelAddr,
        len: usize,
    ) -> Result<(usize, usize), Fault> {
        if !addr.is_valid_at(self.depth) {
            return Err(Fault::NonCanonical(addr));
        }
        let page = page_of(addr);
        let off = (addr.as_u64() - page) as usize;
        if off + len > PAGE as usize {
            return Err(Fault::CrossesPage(addr));
        }
        let cached = self.tlbs[cpu as usize].get(&page).copied();
        let pte = match cached {
            Some(pte) => pte,
            None => {
                let pte = self.lookup(cpu, page);
                if !pte.flags().contains(PageTableFlags::PRESENT) {
                    return Err(Fault::NotMapped(addr));
                }
                self.tlbs[cpu as usize].insert(page, pte);
                pte
            }
        };
        let idx = pfn_index(self.template.frame(pte));
        if idx >= self.memory.len() {
            return Err(Fault::NoSuchFrame(addr));
        }
        Ok((idx, off))
    }

    /// Writes raw `bits` into the slot entry mapping `addr` from `cpu`, as a
    /// kernel's `set_pte()` would (the C ABI's callbacks get raw words).
    pub fn write_raw_pte(&mut self, cpu: u32, addr: u64, bits: u64) {
        let addr = self.addr(addr);
        self.write_slot_pte(cpu, addr, Pte::from_bits(bits));
    }

    pub(super) fn warn(&mut self, err: Error) {
        self.warnings.push(err);
    }

    pub(super) fn write_pte(&mut self, addr: KernelAddr, pte: Pte) {
        assert!(
            addr.is_valid_at(self.depth),
            "no page table maps {addr:?} at {:?}",
            self.depth
        );
        if self.in_direct_map(addr) {
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

    pub(super) fn flush_local(&mut self, cpu: u32, addr: KernelAddr) {
        self.counters.local_flushes += 1;
        self.tlbs[cpu as usize].remove(&page_of(addr));
    }

    pub(super) fn flush_all(&mut self, addr: KernelAddr) {
        self.counters.global_flushes += 1;
        self.counters.ipis += u64::from(self.nr_cpus()) - 1;
        for tlb in &mut self.tlbs {
            tlb.remove(&page_of(addr));
        }
    }
}

fn page_of(addr: KernelAddr) -> u64 {
    addr.as_u64() & !(PAGE - 1)
}

fn pfn_index(frame: PhysFrame<Size4KiB>) -> usize {
    pfn_of(frame) as usize
}
