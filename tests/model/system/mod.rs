// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The system under test (core + simulator) next to a plain reference model,
//! advanced one operation at a time and compared after every step.

use gmem_kmap::sim::{Fault, Machine, OnCpu};
use gmem_kmap::{
    CpuId, Error, KernelAddr, PagingDepth, PinCurrentCpu, Reinsert, SLOTS_PER_CPU, SlotStack,
    Window,
};
use x86_64::structures::paging::{PhysFrame, Size4KiB};

use crate::hw::{Faults, Hw};

/// Which strategy maps the pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Window,
    Reinsert,
}

/// One step. Selectors (`pick`, `frame`, `cpu`, …) are reduced modulo what
/// exists when the step runs, so every generated step is meaningful.
#[derive(Clone, Debug)]
pub enum Op {
    Map {
        cpu: u8,
        frame: u8,
    },
    Unmap {
        cpu: u8,
    },
    UnmapOutOfOrder {
        cpu: u8,
        pick: u8,
    },
    IrqMapUnmap {
        cpu: u8,
        frame: u8,
        offset: u16,
    },
    Switch {
        cpu: u8,
        pick: u8,
    },
    Migrate {
        pick: u8,
        to: u8,
    },
    Read {
        cpu: u8,
        pick: u8,
        offset: u16,
    },
    Write {
        cpu: u8,
        pick: u8,
        offset: u16,
        value: u64,
    },
}

/// How often each interesting outcome happened, so a run can prove it
/// exercised them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Coverage {
    pub steps: u64,
    pub maps: u64,
    pub reads: u64,
    pub depth_exceeded: u64,
    pub out_of_order: u64,
    pub irq_nested: u64,
    pub switches_holding: u64,
    pub migrations_refused: u64,
    pub migrations: u64,
    pub last_user_unmaps: u64,
}

impl Coverage {
    pub fn add(&mut self, o: &Coverage) {
        self.steps += o.steps;
        self.maps += o.maps;
        self.reads += o.reads;
        self.depth_exceeded += o.depth_exceeded;
        self.out_of_order += o.out_of_order;
        self.irq_nested += o.irq_nested;
        self.switches_holding += o.switches_holding;
        self.migrations_refused += o.migrations_refused;
        self.migrations += o.migrations;
        self.last_user_unmaps += o.last_user_unmaps;
    }
}

struct Task {
    stack: SlotStack,
    /// Runqueue the task is on.
    cpu: u32,
    /// Reference: the task's live mappings, oldest first.
    held: Vec<(KernelAddr, PhysFrame<Size4KiB>)>,
}

pub struct System {
    strategy: Strategy,
    faults: Faults,
    machine: Machine,
    window: Window,
    reinsert: Reinsert,
    tasks: Vec<Task>,
    running: Vec<usize>,
    /// Re-insertion users per frame.
    users: Vec<u32>,
    /// Reference: what each frame holds.
    data: Vec<Vec<u8>>,
    /// Reference: shootdowns re-insertion must have sent.
    expected_global_flushes: u64,
    pub coverage: Coverage,
}

pub type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

// After the macro: textual scope.
mod invariants;

const WORD: usize = 8;
const PAGE: usize = 4096;

impl System {
    pub fn new(
        strategy: Strategy,
        faults: Faults,
        depth: PagingDepth,
        nr_cpus: u32,
        tasks_per_cpu: usize,
        nr_frames: usize,
    ) -> Self {
        let mut machine = Machine::new(depth, nr_cpus, nr_frames);
        let window = machine.window();
        let mut data = Vec::new();
        for pfn in 0..nr_frames {
            let frame = machine.frame(pfn);
            let bytes = machine.frame_bytes_mut(frame);
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (pfn * 131 + i * 7 + (i >> 8)) as u8;
            }
            data.push(bytes.to_vec());
        }
        let tasks = (0..nr_cpus as usize * tasks_per_cpu)
            .map(|t| Task {
                stack: SlotStack::new(),
                cpu: (t % nr_cpus as usize) as u32,
                held: Vec::new(),
            })
            .collect();
        Self {
            strategy,
            faults,
            reinsert: Reinsert::new(machine.template()),
            machine,
            window,
            tasks,
            running: (0..nr_cpus as usize).collect(),
            users: vec![0; nr_frames],
            data,
            expected_global_flushes: 0,
            coverage: Coverage::default(),
        }
    }

    fn nr_cpus(&self) -> u32 {
        self.machine.nr_cpus()
    }

    fn cpu(&self, sel: u8) -> u32 {
        u32::from(sel) % self.nr_cpus()
    }

    fn frame(&self, sel: u8) -> PhysFrame<Size4KiB> {
        self.machine
            .frame(usize::from(sel) % self.machine.nr_frames())
    }

    pub fn step(&mut self, op: &Op) -> Check {
        self.coverage.steps += 1;
        match *op {
            Op::Map { cpu, frame } => {
                let (cpu, frame) = (self.cpu(cpu), self.frame(frame));
                self.map(cpu, frame).map(drop)
            }
            Op::Unmap { cpu } => self.unmap_top(self.cpu(cpu)),
            Op::UnmapOutOfOrder { cpu, pick } => self.unmap_out_of_order(self.cpu(cpu), pick),
            Op::IrqMapUnmap { cpu, frame, offset } => {
                let (cpu, frame) = (self.cpu(cpu), self.frame(frame));
                self.irq(cpu, frame, offset)
            }
            Op::Switch { cpu, pick } => self.switch(self.cpu(cpu), pick),
            Op::Migrate { pick, to } => self.migrate(pick, self.cpu(to)),
            Op::Read { cpu, pick, offset } => self.read(self.cpu(cpu), pick, offset),
            Op::Write {
                cpu,
                pick,
                offset,
                value,
            } => self.write(self.cpu(cpu), pick, offset, value),
        }?;
        self.check_invariants()
    }

    /// Maps `frame` for the task running on `cpu`; returns the address, or
    /// `None` when the stack was full (and the core said so).
    fn map(&mut self, cpu: u32, frame: PhysFrame<Size4KiB>) -> Result<Option<KernelAddr>, String> {
        let t = self.running[cpu as usize];
        let depth = self.tasks[t].held.len();
        if depth == SLOTS_PER_CPU {
            self.coverage.depth_exceeded += 1;
            if self.strategy == Strategy::Window {
                let before = self.tasks[t].stack.clone();
                let mut hw = hw(&mut self.machine, self.faults, cpu);
                let got =
                    self.window
                        .map(&mut hw, &self.tasks[t].stack, OnCpu::new(cpu).pin(), frame);
                ensure!(
                    got == Err(Error::DepthExceeded),
                    "map at full depth: {got:?}"
                );
                ensure!(
                    self.tasks[t].stack == before,
                    "failed map changed the stack"
                );
            }
            return Ok(None);
        }
        self.coverage.maps += 1;
        let addr = match self.strategy {
            Strategy::Window => {
                let want = self.window.slot_addr(CpuId::new(cpu), depth).unwrap();
                let mut hw = hw(&mut self.machine, self.faults, cpu);
                let got =
                    self.window
                        .map(&mut hw, &self.tasks[t].stack, OnCpu::new(cpu).pin(), frame);
                ensure!(
                    got == Ok(want),
                    "map on cpu {cpu} depth {depth}: {got:?}, want {want:?}"
                );
                want.addr()
            }
            Strategy::Reinsert => {
                let mut hw = hw(&mut self.machine, self.faults, cpu);
                let got = self
                    .reinsert
                    .map(&mut hw, frame, &mut self.users[pfn(frame)]);
                ensure!(got == Ok(()), "re-insert map: {got:?}");
                self.machine.direct_map_addr(frame)
            }
        };
        self.tasks[t].held.push((addr, frame));
        Ok(Some(addr))
    }

    fn unmap_top(&mut self, cpu: u32) -> Check {
        let t = self.running[cpu as usize];
        let Some(&(addr, frame)) = self.tasks[t].held.last() else {
            if self.strategy == Strategy::Window {
                let free = self.window.slot_addr(CpuId::new(cpu), 0).unwrap();
                let got = self.window_unmap(cpu, t, free.addr());
                ensure!(
                    got == Err(Error::SlotNotMapped),
                    "unmap of a free slot: {got:?}"
                );
            }
            return Ok(());
        };
        match self.strategy {
            Strategy::Window => {
                let got = self.window_unmap(cpu, t, addr);
                ensure!(got == Ok(()), "unmap {addr:?} on cpu {cpu}: {got:?}");
                self.tasks[t].held.pop();
                // The owning CPU can no longer reach the page there.
                let mut word = [0; WORD];
                let got = self.machine.read(cpu, addr, &mut word);
                ensure!(
                    got == Err(Fault::NotMapped(addr)),
                    "slot readable after unmap: {got:?}"
                );
            }
            Strategy::Reinsert => {
                let mut hw = hw(&mut self.machine, self.faults, cpu);
                let got = self
                    .reinsert
                    .unmap(&mut hw, frame, &mut self.users[pfn(frame)]);
                ensure!(got == Ok(()), "re-insert unmap: {got:?}");
                self.tasks[t].held.pop();
                if self.users[pfn(frame)] == 0 {
                    self.coverage.last_user_unmaps += 1;
                    self.expected_global_flushes += 1;
                    // No CPU can reach the page any more.
                    for c in 0..self.nr_cpus() {
                        let mut word = [0; WORD];
                        let got = self.machine.read(c, addr, &mut word);
                        ensure!(got.is_err(), "cpu {c} reads {addr:?} after the last unmap");
                    }
                }
            }
        }
        Ok(())
    }

    fn window_unmap(&mut self, cpu: u32, t: usize, addr: KernelAddr) -> Result<(), Error> {
        let mut hw = hw(&mut self.machine, self.faults, cpu);
        let on = OnCpu::new(cpu);
        self.window
            .unmap(&mut hw, &self.tasks[t].stack, on.pin(), addr)
    }

    fn unmap_out_of_order(&mut self, cpu: u32, pick: u8) -> Check {
        let t = self.running[cpu as usize];
        let held = self.tasks[t].held.len();
        if self.strategy == Strategy::Reinsert {
            // Re-insertion has no order; its misuse is a count underflow.
            let idle = (0..self.machine.nr_frames()).find(|&f| self.users[f] == 0);
            if let Some(f) = idle {
                let frame = self.machine.frame(f);
                let mut hw = hw(&mut self.machine, self.faults, cpu);
                let got = self.reinsert.unmap(&mut hw, frame, &mut 0);
                ensure!(
                    got == Err(Error::BadRefcount),
                    "unmap with no user: {got:?}"
                );
            }
            return Ok(());
        }
        if held < 2 {
            return Ok(());
        }
        self.coverage.out_of_order += 1;
        let (addr, _) = self.tasks[t].held[usize::from(pick) % (held - 1)];
        let before = self.tasks[t].stack.clone();
        let got = self.window_unmap(cpu, t, addr);
        ensure!(
            got == Err(Error::NotTopOfStack),
            "out-of-order unmap: {got:?}"
        );
        ensure!(
            self.tasks[t].stack == before,
            "failed unmap changed the stack"
        );
        Ok(())
    }

    /// A hard IRQ on `cpu` maps on top of the interrupted task, reads, unmaps.
    fn irq(&mut self, cpu: u32, frame: PhysFrame<Size4KiB>, offset: u16) -> Check {
        let Some(addr) = self.map(cpu, frame)? else {
            return Ok(());
        };
        if self.tasks[self.running[cpu as usize]].held.len() > 1 {
            self.coverage.irq_nested += 1;
        }
        self.check_read(cpu, addr, frame, offset)?;
        self.unmap_top(cpu)
    }

    fn switch(&mut self, cpu: u32, pick: u8) -> Check {
        let queue: Vec<usize> = (0..self.tasks.len())
            .filter(|&t| self.tasks[t].cpu == cpu)
            .collect();
        let (prev, next) = (
            self.running[cpu as usize],
            queue[usize::from(pick) % queue.len()],
        );
        if prev == next {
            return Ok(());
        }
        if !self.tasks[prev].held.is_empty() || !self.tasks[next].held.is_empty() {
            self.coverage.switches_holding += 1;
        }
        if self.strategy == Strategy::Window {
            let mut hw = hw(&mut self.machine, self.faults, cpu);
            let on = OnCpu::new(cpu);
            let got = self
                .window
                .sched_out(&mut hw, &self.tasks[prev].stack, on.pin());
            ensure!(got == Ok(()), "sched_out of task {prev}: {got:?}");
            let got = self
                .window
                .sched_in(&mut hw, &self.tasks[next].stack, on.pin());
            ensure!(got == Ok(()), "sched_in of task {next}: {got:?}");
        }
        self.running[cpu as usize] = next;
        Ok(())
    }

    /// Moves a waiting task to `to`'s runqueue. A task holding slots is
    /// pinned: if the scheduler moved it anyway, the core refuses to
    /// install its slots there.
    fn migrate(&mut self, pick: u8, to: u32) -> Check {
        let t = usize::from(pick) % self.tasks.len();
        let from = self.tasks[t].cpu;
        if self.running[from as usize] == t || from == to {
            return Ok(());
        }
        if self.tasks[t].held.is_empty() {
            self.coverage.migrations += 1;
            self.tasks[t].cpu = to;
            return Ok(());
        }
        if self.strategy == Strategy::Window {
            self.coverage.migrations_refused += 1;
            let mut hw = hw(&mut self.machine, self.faults, to);
            let got = self
                .window
                .sched_in(&mut hw, &self.tasks[t].stack, OnCpu::new(to).pin());
            ensure!(
                got == Err(Error::WrongCpu),
                "sched_in on a foreign cpu: {got:?}"
            );
        }
        Ok(())
    }

    fn read(&mut self, cpu: u32, pick: u8, offset: u16) -> Check {
        let t = self.running[cpu as usize];
        let held = &self.tasks[t].held;
        if held.is_empty() {
            return self.check_direct_map(cpu, pick);
        }
        let (addr, frame) = held[usize::from(pick) % held.len()];
        self.check_read(cpu, addr, frame, offset)
    }

    fn write(&mut self, cpu: u32, pick: u8, offset: u16, value: u64) -> Check {
        let t = self.running[cpu as usize];
        let held = &self.tasks[t].held;
        if held.is_empty() {
            return Ok(());
        }
        let (addr, frame) = held[usize::from(pick) % held.len()];
        let off = usize::from(offset) % (PAGE - WORD);
        let got = self.machine.write(
            cpu,
            addr.checked_add(off as u64).unwrap(),
            &value.to_le_bytes(),
        );
        ensure!(got.is_ok(), "write through {addr:?}: {got:?}");
        self.data[pfn(frame)][off..off + WORD].copy_from_slice(&value.to_le_bytes());
        Ok(())
    }

    /// Data read through a mapping equals the page's data.
    fn check_read(
        &mut self,
        cpu: u32,
        addr: KernelAddr,
        frame: PhysFrame<Size4KiB>,
        offset: u16,
    ) -> Check {
        self.coverage.reads += 1;
        let off = usize::from(offset) % (PAGE - WORD);
        let mut word = [0; WORD];
        let got = self
            .machine
            .read(cpu, addr.checked_add(off as u64).unwrap(), &mut word);
        ensure!(got.is_ok(), "read through {addr:?} on cpu {cpu}: {got:?}");
        let want = &self.data[pfn(frame)][off..off + WORD];
        ensure!(
            word == want,
            "cpu {cpu} read {word:?} at {addr:?}+{off}, page {frame:?} holds {want:?}"
        );
        Ok(())
    }

    /// The direct-map address of a frame is reachable iff re-insertion holds it.
    fn check_direct_map(&mut self, cpu: u32, pick: u8) -> Check {
        let frame = self.frame(pick);
        let addr = self.machine.direct_map_addr(frame);
        let mut word = [0; WORD];
        let reachable = self.machine.read(cpu, addr, &mut word).is_ok();
        let inserted = self.strategy == Strategy::Reinsert && self.users[pfn(frame)] > 0;
        ensure!(
            reachable == inserted,
            "direct map of {frame:?} reachable={reachable}, inserted={inserted}"
        );
        Ok(())
    }
}

/// One CPU's hardware; a free function so it borrows only the machine.
fn hw(machine: &mut Machine, faults: Faults, cpu: u32) -> Hw<'_> {
    Hw {
        inner: machine.cpu(cpu),
        faults,
    }
}

fn pfn(frame: PhysFrame<Size4KiB>) -> usize {
    gmem_kmap::pfn_of(frame) as usize
}
