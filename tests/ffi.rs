// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The C ABI end to end, with the simulator standing in for the kernel's
//! hardware callbacks. The window is process-global, and the "before init"
//! checks must run before anything initializes it, so the test runs once per
//! paging depth, each in a child process of its own.

use std::process::Command;
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use gmem_kmap::ffi::*;
use gmem_kmap::sim::{AddressMap, Machine, PAGE_KERNEL, PHYS_BITS};
use gmem_kmap::{DirectMapHardware, Error, PagingDepth, SLOTS_PER_CPU, SlotStack};

const NR_CPUS: u32 = 2;
/// Set in the child: the depth it runs the C ABI at.
const DEPTH_ENV: &str = "GMEM_KMAP_FFI_TEST_LEVELS";

static MACHINE: Mutex<Option<Machine>> = Mutex::new(None);
/// The CPU the "kernel" is running on, as the callbacks see it.
static CPU: AtomicU32 = AtomicU32::new(0);

fn with_hw<R>(f: impl FnOnce(&mut gmem_kmap::sim::CpuHw<'_>) -> R) -> R {
    let mut guard = MACHINE.lock().unwrap();
    let machine = guard.as_mut().expect("machine set up");
    sync_tables(machine);
    f(&mut machine.cpu(CPU.load(Ordering::Relaxed)))
}

/// One CPU's slot entries in one placement, as the kernel hands them to
/// the core: the core stores through the pointer, without a callback.
type SlotTable = [u64; SLOTS_PER_CPU];

/// Whose table: placement (0 shared, 1 private), the process for a private
/// one (0 for shared), and the CPU.
type TableKey = (u8, u32, u32);

/// The tables handed out so far, each at a stable address for the test.
static TABLES: Mutex<Vec<(TableKey, usize)>> = Mutex::new(Vec::new());

/// The entries of `cpu`'s slots in `placement`: the shared ones, or those
/// in the tables of the process `cpu` runs now.
fn ptes(placement: u8, cpu: u32) -> *mut u64 {
    let mm = match placement {
        0 => 0,
        _ => MACHINE.lock().unwrap().as_ref().unwrap().current_mm(cpu),
    };
    let key = (placement, mm, cpu);
    let mut tables = TABLES.lock().unwrap();
    let at = match tables.iter().find(|(k, _)| *k == key) {
        Some(&(_, at)) => at,
        None => {
            let at = Box::into_raw(Box::new([0u64; SLOTS_PER_CPU])) as usize;
            tables.push((key, at));
            at
        }
    };
    at as *mut u64
}

fn shared_ptes(cpu: u32) -> *mut u64 {
    ptes(0, cpu)
}

fn private_ptes(cpu: u32) -> *mut u64 {
    ptes(1, cpu)
}

/// Copies what the core stored into the simulator's page tables, so that
/// its MMU translates through them: the shared entries always, a process's
/// private ones on the CPUs that run it.
fn sync_tables(machine: &mut Machine) {
    let depth = machine.depth();
    let map = AddressMap::of(depth);
    for &((placement, mm, cpu), at) in TABLES.lock().unwrap().iter() {
        let base = match placement {
            0 => map.window_base(),
            _ if machine.current_mm(cpu) == mm => map.private_window_base(),
            _ => continue,
        };
        // SAFETY: `at` is a leaked `SlotTable`, only read here while the core
        // (on this thread, between calls) is not writing it.
        let table = unsafe { &*(at as *const SlotTable) };
        for (idx, &bits) in table.iter().enumerate() {
            let addr = base + (u64::from(cpu) * SLOTS_PER_CPU as u64 + idx as u64) * 4096;
            machine.write_raw_pte(cpu, addr, bits);
        }
    }
}

#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_flush_local(addr: u64) {
    with_hw(|hw| {
        let addr = hw.machine().addr(addr);
        hw.flush_addr(addr)
    })
}

/// The WARNs the core asked for.
static WARNINGS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_warn(code: i32) {
    WARNINGS.lock().unwrap().push(code);
}

#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_direct_map_set(pfn: u64, present: bool) {
    let frame = gmem_kmap::frame_from_pfn(pfn).unwrap();
    with_hw(|hw| {
        if present {
            hw.direct_map_present(frame)
        } else {
            hw.direct_map_absent(frame)
        }
    })
}

#[unsafe(no_mangle)]
extern "C" fn gmem_kmap_hw_flush_all(pfn: u64) {
    with_hw(|hw| hw.flush_all(gmem_kmap::frame_from_pfn(pfn).unwrap()))
}

fn read_byte(cpu: u32, addr: u64) -> Option<u8> {
    let mut b = [0];
    let mut guard = MACHINE.lock().unwrap();
    let machine = guard.as_mut().unwrap();
    sync_tables(machine);
    let addr = machine.addr(addr);
    machine.read(cpu, addr, &mut b).ok().map(|()| b[0])
}

fn code(e: Error) -> i32 {
    e.code()
}

/// Runs [`c_abi_at`] in a child process per depth.
#[test]
fn c_abi_end_to_end_at_both_depths() {
    if std::env::var_os(DEPTH_ENV).is_some() {
        return;
    }
    for depth in PagingDepth::ALL {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "c_abi_child", "--nocapture", "--test-threads=1"])
            .env(DEPTH_ENV, depth.levels().to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "C ABI at {depth:?}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The child: the C ABI at the depth the parent asked for.
#[test]
fn c_abi_child() {
    let Some(levels) = std::env::var_os(DEPTH_ENV) else {
        return;
    };
    let levels: u8 = levels.to_str().unwrap().parse().unwrap();
    c_abi_at(PagingDepth::from_levels(levels).unwrap());
}

fn c_abi_at(depth: PagingDepth) {
    let levels = depth.levels();
    // The window's configuration but for the depth and the private base.
    let base = AddressMap::of(depth).window_base();
    let init_at = |levels: u8, own: u64| {
        gmem_kmap_init(base, NR_CPUS, PAGE_KERNEL, PHYS_BITS, levels, own, false)
    };
    let mut machine = Machine::new(depth, NR_CPUS, 8);
    for pfn in 0..8 {
        let f = machine.frame(pfn);
        machine.frame_bytes_mut(f)[0] = 0x10 + pfn as u8;
    }
    *MACHINE.lock().unwrap() = Some(machine);
    let mut ctrl = SlotStack::new();
    let mut addr = 0u64;
    let mut users = 0u32;

    // SAFETY: every pointer passed below is null on purpose or points
    // to a live local that nothing else references during the call.
    unsafe {
        // Used before init: every entry point refuses.
        let not_init = code(Error::NotInitialized);
        assert_eq!(
            gmem_kmap_map(&mut ctrl, 0, 1, 0, ptes(0, 0), &mut addr),
            not_init
        );
        assert_eq!(
            gmem_kmap_unmap(&mut ctrl, 0, base, shared_ptes(0), private_ptes(0)),
            not_init
        );
        assert_eq!(
            gmem_kmap_sched_out(&mut ctrl, 0, shared_ptes(0), private_ptes(0)),
            not_init
        );
        assert_eq!(
            gmem_kmap_sched_in(&mut ctrl, 0, shared_ptes(0), private_ptes(0)),
            not_init
        );
        assert_eq!(
            gmem_kmap_exit(&mut ctrl, 0, shared_ptes(0), private_ptes(0)),
            not_init
        );
        assert_eq!(gmem_kmap_slot_addr(0, 0, 0, &mut addr), not_init);
        assert_eq!(gmem_reinsert_map(1, &mut users), not_init);
        assert_eq!(gmem_reinsert_unmap(1, &mut users), not_init);

        // Bad configurations are refused and leave the window uninitialized.
        let bad_template = code(Error::BadTemplate);
        assert_eq!(
            gmem_kmap_init(base, NR_CPUS, PAGE_KERNEL | 4, PHYS_BITS, levels, 0, false),
            bad_template
        );
        assert_eq!(
            gmem_kmap_init(base, NR_CPUS, PAGE_KERNEL, 60, levels, 0, false),
            bad_template
        );
        let bad_layout = code(Error::BadLayout);
        assert_eq!(
            gmem_kmap_init(
                0x0000_9000_0000_0000,
                NR_CPUS,
                PAGE_KERNEL,
                PHYS_BITS,
                levels,
                0,
                false
            ),
            bad_layout
        );
        assert_eq!(
            gmem_kmap_init(base + 1, NR_CPUS, PAGE_KERNEL, PHYS_BITS, levels, 0, false),
            bad_layout
        );
        assert_eq!(
            gmem_kmap_init(base, 0, PAGE_KERNEL, PHYS_BITS, levels, 0, false),
            bad_layout
        );
        assert_eq!(init_at(3, 0), code(Error::BadPagingDepth));
        // 5-level vmalloc space is refused by a 4-level kernel.
        let vmalloc5 = AddressMap::of(PagingDepth::Five).vmalloc;
        assert_eq!(
            gmem_kmap_init(vmalloc5, NR_CPUS, PAGE_KERNEL, PHYS_BITS, 4, 0, false),
            bad_layout
        );
        assert_eq!(gmem_kmap_slot_addr(0, 0, 0, &mut addr), not_init);

        // A private placement overlapping the shared one is refused.
        let private = AddressMap::of(depth).private_window_base();
        assert_eq!(init_at(levels, base + 4096), bad_layout);
        assert_eq!(init_at(levels, private + 1), bad_layout);

        // Init once; again with the same values is fine, different is not.
        assert_eq!(init_at(levels, private), 0);
        assert_eq!(init_at(levels, private), 0);
        assert_eq!(init_at(levels, 0), code(Error::AlreadyInitialized));
        assert_eq!(
            gmem_kmap_init(
                base,
                NR_CPUS + 1,
                PAGE_KERNEL,
                PHYS_BITS,
                levels,
                private,
                false
            ),
            code(Error::AlreadyInitialized)
        );
        // Flushing by `invlpg` is part of the configuration too.
        assert_eq!(
            gmem_kmap_init(base, NR_CPUS, PAGE_KERNEL, PHYS_BITS, levels, private, true),
            code(Error::AlreadyInitialized)
        );
        // The other depth: a 4-level window is valid at 5 levels too, but
        // differs from the one set up; a 5-level one is not valid at 4.
        let (other, want) = match depth {
            PagingDepth::Four => (5, Error::AlreadyInitialized),
            PagingDepth::Five => (4, Error::BadLayout),
        };
        assert_eq!(init_at(other, private), code(want));

        // Null pointers.
        let null = code(Error::NullPointer);
        assert_eq!(
            gmem_kmap_map(ptr::null_mut(), 0, 1, 0, shared_ptes(0), &mut addr),
            null
        );
        assert_eq!(
            gmem_kmap_map(&mut ctrl, 0, 1, 0, shared_ptes(0), ptr::null_mut()),
            null
        );
        // No tables handed over for the placement asked for.
        assert_eq!(
            gmem_kmap_map(&mut ctrl, 0, 1, 0, ptr::null_mut(), &mut addr),
            null
        );
        assert_eq!(
            gmem_kmap_map(&mut ctrl, 0, 1, 1, ptr::null_mut(), &mut addr),
            null
        );
        assert_eq!(
            gmem_kmap_unmap(ptr::null_mut(), 0, base, shared_ptes(0), private_ptes(0)),
            null
        );
        assert_eq!(gmem_kmap_fork(ptr::null_mut()), null);
        assert_eq!(gmem_reinsert_map(1, ptr::null_mut()), null);
        assert!(ctrl.is_empty());

        // Slot geometry as C sees it.
        assert_eq!(gmem_kmap_slot_addr(1, 3, 0, &mut addr), 0);
        assert_eq!(addr, base + (SLOTS_PER_CPU as u64 + 3) * 4096);
        assert_eq!(
            gmem_kmap_slot_addr(NR_CPUS, 0, 0, &mut addr),
            code(Error::BadCpu)
        );
        assert_eq!(gmem_kmap_slot_addr(1, 3, 1, &mut addr), 0);
        assert_eq!(addr, private + (SLOTS_PER_CPU as u64 + 3) * 4096);
        assert_eq!(
            gmem_kmap_slot_addr(1, 3, 2, &mut addr),
            code(Error::NoPrivateWindow)
        );

        // Map, read through the slot, nest, unmap in order.
        CPU.store(1, Ordering::Relaxed);
        let (mut a, mut b) = (0, 0);
        assert_eq!(gmem_kmap_map(&mut ctrl, 1, 2, 0, ptes(0, 1), &mut a), 0);
        assert_eq!(gmem_kmap_map(&mut ctrl, 1, 5, 0, ptes(0, 1), &mut b), 0);
        assert_eq!(read_byte(1, a), Some(0x12));
        assert_eq!(read_byte(1, b), Some(0x15));
        assert!(read_byte(1, b + 4095).is_some(), "the whole page is mapped");
        assert_eq!(
            gmem_kmap_unmap(&mut ctrl, 1, a, shared_ptes(1), private_ptes(1)),
            code(Error::NotTopOfStack)
        );
        assert_eq!(
            gmem_kmap_unmap(&mut ctrl, 1, b + 100, shared_ptes(1), private_ptes(1)),
            0,
            "any offset in the slot"
        );
        assert_eq!(read_byte(1, b), None, "unmapped slot still reachable");
        assert_eq!(
            gmem_kmap_map(&mut ctrl, 1, 1 << 40, 0, ptes(0, 1), &mut b),
            code(Error::BadPfn)
        );
        assert_eq!(
            gmem_kmap_unmap(&mut ctrl, 1, 0x1000, shared_ptes(1), private_ptes(1)),
            code(Error::NotASlot)
        );
        assert_eq!(
            gmem_kmap_unmap(
                &mut ctrl,
                1,
                0xdead_0000_0000_0000,
                shared_ptes(1),
                private_ptes(1)
            ),
            code(Error::NotASlot)
        );

        // A private mapping nests on a shared one, in the tables of the
        // process CPU 1 runs; an unknown placement is refused.
        let mut p = 0;
        assert_eq!(
            gmem_kmap_map(&mut ctrl, 1, 6, 2, ptes(1, 1), &mut p),
            code(Error::NoPrivateWindow)
        );
        MACHINE.lock().unwrap().as_mut().unwrap().switch_mm(1, 7);
        assert_eq!(gmem_kmap_map(&mut ctrl, 1, 6, 1, ptes(1, 1), &mut p), 0);
        assert_eq!(p, private + (SLOTS_PER_CPU as u64 + 1) * 4096);
        assert_eq!(read_byte(1, p), Some(0x16));
        // Slot 1 of the shared placement is not that mapping.
        assert_eq!(
            gmem_kmap_unmap(
                &mut ctrl,
                1,
                base + (SLOTS_PER_CPU as u64 + 1) * 4096,
                shared_ptes(1),
                private_ptes(1)
            ),
            code(Error::SlotNotMapped)
        );
        {
            let guard = MACHINE.lock().unwrap();
            let m = guard.as_ref().unwrap();
            let at = m.addr(p);
            assert!(m.pte(at).is_none(), "a private slot in the shared tables");
            assert!(
                !m.slot_pte(1, at)
                    .flags()
                    .contains(x86_64::structures::paging::PageTableFlags::GLOBAL)
            );
        }

        // Without the private tables, nothing that would write them runs.
        let null = code(Error::NullPointer);
        let none = ptr::null_mut();
        assert_eq!(gmem_kmap_unmap(&mut ctrl, 1, p, shared_ptes(1), none), null);
        // Misuse is still told apart: not the tables, the address is wrong.
        assert_eq!(
            gmem_kmap_unmap(
                &mut ctrl,
                1,
                base + (SLOTS_PER_CPU as u64 + 1) * 4096,
                shared_ptes(1),
                none
            ),
            code(Error::SlotNotMapped)
        );
        assert_eq!(
            gmem_kmap_sched_out(&mut ctrl, 1, shared_ptes(1), none),
            null
        );
        assert_eq!(gmem_kmap_exit(&mut ctrl, 1, shared_ptes(1), none), null);
        assert_eq!((read_byte(1, a), read_byte(1, p)), (Some(0x12), Some(0x16)));
        assert_eq!(ctrl.depth(), 2);

        // Context switch: out clears, in restores, another CPU is refused.
        assert_eq!(
            gmem_kmap_sched_out(&mut ctrl, 1, shared_ptes(1), private_ptes(1)),
            0
        );
        assert_eq!((read_byte(1, a), read_byte(1, p)), (None, None));
        CPU.store(0, Ordering::Relaxed);
        assert_eq!(
            gmem_kmap_sched_in(&mut ctrl, 0, shared_ptes(0), private_ptes(0)),
            code(Error::WrongCpu)
        );
        CPU.store(1, Ordering::Relaxed);
        assert_eq!(
            gmem_kmap_sched_in(&mut ctrl, 1, shared_ptes(1), private_ptes(1)),
            0
        );
        assert_eq!((read_byte(1, a), read_byte(1, p)), (Some(0x12), Some(0x16)));
        assert_eq!(
            gmem_kmap_unmap(&mut ctrl, 1, p + 8, shared_ptes(1), private_ptes(1)),
            0
        );
        assert_eq!(read_byte(1, p), None);

        // Fork copies nothing; exit with a live slot releases it and says so.
        let mut child = ctrl.clone();
        assert_eq!(gmem_kmap_fork(&mut child), code(Error::StackNotEmpty));
        assert!(child.is_empty());
        assert_eq!(
            gmem_kmap_exit(&mut ctrl, 1, shared_ptes(1), private_ptes(1)),
            code(Error::StackNotEmpty)
        );
        assert_eq!(read_byte(1, a), None);
        assert_eq!(
            gmem_kmap_exit(&mut ctrl, 1, shared_ptes(1), private_ptes(1)),
            0
        );
        assert_eq!(gmem_kmap_fork(&mut child), 0);

        // Re-insertion: present while used, absent and shot down after.
        let direct = {
            let guard = MACHINE.lock().unwrap();
            let frame = gmem_kmap::frame_from_pfn(3).unwrap();
            guard.as_ref().unwrap().direct_map_addr(frame).as_u64()
        };
        assert_eq!(read_byte(0, direct), None);
        assert_eq!(gmem_reinsert_map(3, &mut users), 0);
        assert_eq!(gmem_reinsert_map(3, &mut users), 0);
        assert_eq!(
            (users, read_byte(0, direct), read_byte(1, direct)),
            (2, Some(0x13), Some(0x13))
        );
        assert_eq!(gmem_reinsert_unmap(3, &mut users), 0);
        assert_eq!(read_byte(0, direct), Some(0x13), "still one user");
        assert_eq!(gmem_reinsert_unmap(3, &mut users), 0);
        assert_eq!(
            (users, read_byte(0, direct), read_byte(1, direct)),
            (0, None, None)
        );
        assert_eq!(gmem_reinsert_unmap(3, &mut users), code(Error::BadRefcount));
        assert_eq!(gmem_reinsert_map(1 << 40, &mut users), code(Error::BadPfn));
    }
    let counters = MACHINE.lock().unwrap().as_ref().unwrap().counters();
    assert_eq!(
        (counters.global_flushes, counters.ipis),
        (1, u64::from(NR_CPUS) - 1)
    );
}
