// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The C ABI the kernel links against.
//!
//! Every function returns 0 or a negative [`Error`] code, so the glue can
//! `WARN_ON_ONCE(ret)` and fail cleanly. The glue supplies the hardware as
//! the `gmem_kmap_hw_*` functions below and passes the current CPU, because
//! the core knows nothing of Linux. The header `include/gmem_kmap_core.h` is
//! generated from this file by cbindgen.

use core::marker::PhantomData;

use crate::addr::{KernelAddr, PagingDepth};
use crate::cpu::{CpuId, PinCurrentCpu, PinnedCpu};
use crate::error::{Error, Result};
use crate::geometry::{Layout, Placement, SlotAddr};
use crate::hw::SlotHardware;
use crate::pte::{Pte, PteTemplate, frame_from_pfn};
use crate::slot_stack::SlotStack;
use crate::window::Window;

mod init_once;
use init_once::InitOnce;

#[cfg(feature = "reinsert")]
mod reinsert;
#[cfg(feature = "reinsert")]
pub use reinsert::{gmem_reinsert_map, gmem_reinsert_unmap};

#[cfg(feature = "pool")]
mod pool;
#[cfg(feature = "pool")]
pub use pool::{
    gmem_pool_add_block, gmem_pool_alloc, gmem_pool_free, gmem_pool_init, gmem_pool_poison,
    gmem_pool_release, gmem_pool_stats,
};

// Provided by the kernel glue; each acts for the CPU it is called on.
unsafe extern "C" {
    /// Writes `pte` into the kernel PTE that maps window slot `addr`.
    fn gmem_kmap_hw_set_pte(addr: u64, pte: u64);
    /// Clears the kernel PTE that maps window slot `addr`, without a flush.
    fn gmem_kmap_hw_clear_pte(addr: u64);
    /// Whether the kernel PTE that maps window slot `addr` is `pte_none()`.
    fn gmem_kmap_hw_pte_none(addr: u64) -> bool;
    /// Flushes `addr` from the local TLB only (`flush_tlb_one_kernel`).
    fn gmem_kmap_hw_flush_local(addr: u64);
    /// `WARN`s that the core found misuse `code` it could not return.
    fn gmem_kmap_hw_warn(code: i32);
}

/// The hardware as the kernel glue provides it.
struct KernelHw;

impl SlotHardware for KernelHw {
    fn set_pte(&mut self, slot: SlotAddr, pte: Pte) {
        // SAFETY: `KernelHw` is private to this module, which hands it only
        // to the one `window()`, so `slot` is a slot of the window the glue
        // reserved (the glue checks its range again) and `pte` was built by
        // that window's template.
        unsafe { gmem_kmap_hw_set_pte(slot.as_u64(), pte.bits()) }
    }

    fn clear_pte(&mut self, slot: SlotAddr) {
        // SAFETY: as above, `slot` is a window slot.
        unsafe { gmem_kmap_hw_clear_pte(slot.as_u64()) }
    }

    fn pte_is_none(&self, slot: SlotAddr) -> bool {
        // SAFETY: as above, `slot` is a window slot.
        unsafe { gmem_kmap_hw_pte_none(slot.as_u64()) }
    }

    fn flush_local(&mut self, slot: SlotAddr) {
        // SAFETY: flushing any kernel address from the local TLB is harmless.
        unsafe { gmem_kmap_hw_flush_local(slot.as_u64()) }
    }

    fn warn(&mut self, err: Error) {
        // SAFETY: a WARN with an integer argument has no precondition.
        unsafe { gmem_kmap_hw_warn(err.code()) }
    }
}

/// What every entry point's C caller promises: it runs on `cpu` with
/// preemption disabled for the call (and migration disabled for as long as
/// it holds slots, which `sched_in` checks).
struct CallerPinned {
    cpu: CpuId,
    _not_send: PhantomData<*const ()>,
}

impl CallerPinned {
    /// # Safety
    /// The caller runs on `cpu`, and cannot be moved off it, until the value
    /// is dropped.
    unsafe fn assume(cpu: u32) -> Self {
        CallerPinned {
            cpu: CpuId::new(cpu),
            _not_send: PhantomData,
        }
    }
}

// SAFETY: `assume`'s contract is (1) and (2); the marker makes it `!Send` (3).
unsafe impl PinCurrentCpu for CallerPinned {
    fn current_cpu(&self) -> CpuId {
        self.cpu
    }
}

/// The window, set once at boot by [`gmem_kmap_init`].
static WINDOW: InitOnce<Window> = InitOnce::new();

fn window() -> Result<&'static Window> {
    WINDOW.get().ok_or(Error::NotInitialized)
}

fn status(result: Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(err) => err.code(),
    }
}

/// Turns a C pointer into a reference, refusing null.
///
/// # Safety
/// A non-null `ptr` must be valid for writes and not otherwise referenced
/// for the duration of the call.
unsafe fn from_c<'a, T>(ptr: *mut T) -> Result<&'a mut T> {
    // SAFETY: the caller guarantees validity and exclusivity when non-null.
    unsafe { ptr.as_mut() }.ok_or(Error::NullPointer)
}

/// Sets up the window: `nr_cpus` CPUs' slots from `base`, mapped with
/// `prot` (`PAGE_KERNEL`) on a machine with `phys_bits` of physical address
/// and `levels` (4 or 5) levels of page tables; and, unless `private_base`
/// is 0, the same slots from `private_base` in each process's own page
/// tables, mapped with `prot` minus `_PAGE_GLOBAL`.
///
/// Call once at boot, before any other function. A second call with the same
/// values succeeds; with different ones it fails and changes nothing.
#[unsafe(no_mangle)]
pub extern "C" fn gmem_kmap_init(
    base: u64,
    nr_cpus: u32,
    prot: u64,
    phys_bits: u8,
    levels: u8,
    private_base: u64,
) -> i32 {
    status(init(base, nr_cpus, prot, phys_bits, levels, private_base))
}

fn init(
    base: u64,
    nr_cpus: u32,
    page_kernel: u64,
    phys_bits: u8,
    levels: u8,
    private_base: u64,
) -> Result<()> {
    let depth = PagingDepth::from_levels(levels)?;
    let layout = Layout::new(base, nr_cpus, depth)?;
    let template = PteTemplate::new(page_kernel, phys_bits)?;
    let mut wanted = Window::new(layout, template);
    if private_base != 0 {
        wanted = wanted.with_private(Layout::new(private_base, nr_cpus, depth)?)?;
    }
    if *WINDOW.get_or_set(wanted) != wanted {
        return Err(Error::AlreadyInitialized);
    }
    Ok(())
}

/// Turns a task's control block pointer into a reference, refusing null.
///
/// # Safety
/// A non-null `ctrl` must be valid for the duration of the call. It may be
/// reached meanwhile by an interrupt handler on this CPU (the stack's
/// fields are cells), but by no other CPU.
unsafe fn stack_from_c<'a>(ctrl: *mut SlotStack) -> Result<&'a SlotStack> {
    // SAFETY: the caller guarantees validity when non-null.
    unsafe { ctrl.as_ref() }.ok_or(Error::NullPointer)
}

/// Runs `op` on the window, the stack behind `ctrl` and the caller's CPU,
/// as a status code.
///
/// # Safety
/// As [`stack_from_c`] and [`CallerPinned::assume`].
unsafe fn with_stack(
    ctrl: *mut SlotStack,
    cpu: u32,
    op: impl FnOnce(&Window, &SlotStack, PinnedCpu<'_>) -> Result<()>,
) -> i32 {
    // SAFETY: forwarded from the caller.
    let pinned = unsafe { CallerPinned::assume(cpu) };
    let run = || {
        let window = window()?;
        // SAFETY: forwarded from the caller.
        op(
            window,
            unsafe { stack_from_c(ctrl)? },
            PinnedCpu::of(&pinned),
        )
    };
    status(run())
}

/// Maps page frame `pfn` at the next slot of `cpu` for the task owning
/// `ctrl`, in `placement` (0 shared, 1 private), and stores the slot address
/// in `*addr`.
///
/// # Safety
/// `ctrl` and `addr` are null or valid and exclusively the caller's for the
/// call; the caller runs on `cpu` with preemption disabled, and for the
/// private placement in the page tables of the task's own process.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_map(
    ctrl: *mut SlotStack,
    cpu: u32,
    pfn: u64,
    placement: u8,
    addr: *mut u64,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_stack(ctrl, cpu, |window, stack, pin| {
            let placement = Placement::from_c(placement).ok_or(Error::NoPrivateWindow)?;
            let out = from_c(addr)?;
            *out = window
                .map_in(&mut KernelHw, stack, pin, frame_from_pfn(pfn)?, placement)?
                .as_u64();
            Ok(())
        })
    }
}

/// Unmaps the slot containing `addr`, the task's most recent mapping on `cpu`.
///
/// # Safety
/// `ctrl` is null or valid and exclusively the caller's for the call; the
/// caller runs on `cpu` with preemption disabled.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_unmap(ctrl: *mut SlotStack, cpu: u32, addr: u64) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_stack(ctrl, cpu, |window, stack, pin| {
            // Not even a kernel address: certainly not a slot.
            let addr = KernelAddr::new(addr, window.paging_depth()).map_err(|_| Error::NotASlot)?;
            window.unmap(&mut KernelHw, stack, pin, addr)
        })
    }
}

/// Clears the slots of the task owning `ctrl` as it is switched out on `cpu`.
///
/// # Safety
/// `ctrl` is null or valid for the call; called from the context switch.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_sched_out(ctrl: *mut SlotStack, cpu: u32) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_stack(ctrl, cpu, |window, stack, pin| {
            window.sched_out(&mut KernelHw, stack, pin)
        })
    }
}

/// Re-installs the slots of the task owning `ctrl` as it is switched in on `cpu`.
///
/// # Safety
/// `ctrl` is null or valid for the call; called from the context switch.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_sched_in(ctrl: *mut SlotStack, cpu: u32) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_stack(ctrl, cpu, |window, stack, pin| {
            window.sched_in(&mut KernelHw, stack, pin)
        })
    }
}

/// Empties a child's copy of its parent's control block at fork; fails if
/// the parent held slots.
///
/// # Safety
/// `ctrl` is null or valid and exclusively the caller's for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_fork(ctrl: *mut SlotStack) -> i32 {
    // SAFETY: forwarded from this function's contract.
    status(unsafe { stack_from_c(ctrl) }.and_then(SlotStack::reset_for_fork))
}

/// Releases whatever the exiting task owning `ctrl` still holds on `cpu`;
/// fails if it held anything.
///
/// # Safety
/// `ctrl` is null or valid and exclusively the caller's for the call; the
/// caller runs on `cpu` with preemption disabled.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_exit(ctrl: *mut SlotStack, cpu: u32) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_stack(ctrl, cpu, |window, stack, pin| {
            window.release_at_exit(&mut KernelHw, stack, pin)
        })
    }
}

/// Stores the address of slot `idx` of `cpu` in `placement` (0 shared, 1
/// private) in `*addr`.
///
/// # Safety
/// `addr` is null or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_slot_addr(
    cpu: u32,
    idx: u32,
    placement: u8,
    addr: *mut u64,
) -> i32 {
    let slot_addr = || -> Result<()> {
        let window = window()?;
        let placement = Placement::from_c(placement).ok_or(Error::NoPrivateWindow)?;
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { from_c(addr)? };
        *out = window
            .layout_of(placement)?
            .slot_addr(CpuId::new(cpu), idx as usize)?
            .as_u64();
        Ok(())
    };
    status(slot_addr())
}
