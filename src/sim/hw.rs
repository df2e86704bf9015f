// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The simulated machine as one CPU sees it: both hardware traits.

use x86_64::VirtAddr;
use x86_64::structures::paging::{PhysFrame, Size4KiB};

use super::Machine;
use crate::hw::{DirectMapHardware, SlotHardware};
use crate::pte::Pte;

/// The machine's hardware as seen from one CPU.
pub struct CpuHw<'m> {
    machine: &'m mut Machine,
    cpu: u32,
}

impl<'m> CpuHw<'m> {
    pub(super) fn new(machine: &'m mut Machine, cpu: u32) -> Self {
        Self { machine, cpu }
    }

    /// The CPU this handle acts for.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// The whole machine, e.g. to access memory through a mapping.
    pub fn machine(&mut self) -> &mut Machine {
        self.machine
    }

    /// Loads from `addr` on this CPU.
    pub fn read(&mut self, addr: VirtAddr, buf: &mut [u8]) -> Result<(), super::Fault> {
        self.machine.read(self.cpu, addr, buf)
    }

    /// Stores to `addr` on this CPU.
    pub fn write(&mut self, addr: VirtAddr, data: &[u8]) -> Result<(), super::Fault> {
        self.machine.write(self.cpu, addr, data)
    }
}

impl SlotHardware for CpuHw<'_> {
    fn set_pte(&mut self, addr: VirtAddr, pte: Pte) {
        self.machine.write_pte(addr, pte);
    }

    fn clear_pte(&mut self, addr: VirtAddr) {
        self.machine.write_pte(addr, Pte::NONE);
    }

    fn read_pte(&self, addr: VirtAddr) -> Pte {
        self.machine.pte(addr)
    }

    fn flush_local(&mut self, addr: VirtAddr) {
        self.machine.flush_local(self.cpu, addr);
    }
}

impl DirectMapHardware for CpuHw<'_> {
    fn direct_map_present(&mut self, frame: PhysFrame<Size4KiB>) {
        let pte = self
            .machine
            .template()
            .pte(frame)
            .expect("frame of this machine");
        self.machine.write_pte(Machine::direct_map_addr(frame), pte);
    }

    fn direct_map_absent(&mut self, frame: PhysFrame<Size4KiB>) {
        self.machine
            .write_pte(Machine::direct_map_addr(frame), Pte::NONE);
    }

    fn flush_all(&mut self, frame: PhysFrame<Size4KiB>) {
        self.machine.flush_all(Machine::direct_map_addr(frame));
    }
}
