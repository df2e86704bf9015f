// SPDX-License-Identifier: GPL-2.0 OR MIT
//! A value written once at boot and read lock-free on every call after.
//!
//! `spin::Once` would do, but its initialisation path panics on poisoning,
//! which would leave `core::panicking` undefined in the kernel object.

use core::cell::UnsafeCell;
use core::hint::spin_loop;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU8, Ordering};

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

/// A cell that is set at most once.
pub(crate) struct InitOnce<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written by exactly one thread (the one that moved the
// state from EMPTY to WRITING) before READY is published with Release, and
// only read after READY is observed with Acquire; it is never written again.
unsafe impl<T: Send + Sync> Sync for InitOnce<T> {}

impl<T> InitOnce<T> {
    /// An empty cell.
    pub(crate) const fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The value, if it has been set.
    pub(crate) fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) != READY {
            return None;
        }
        // SAFETY: READY was published after the value was written (see `Sync`).
        Some(unsafe { (*self.value.get()).assume_init_ref() })
    }

    /// Sets the value if the cell is empty; returns the value it holds.
    pub(crate) fn get_or_set(&self, value: T) -> &T {
        let claimed =
            self.state
                .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Acquire);
        if claimed.is_ok() {
            // SAFETY: the successful exchange makes this the only writer, and
            // no reader looks before READY.
            unsafe { (*self.value.get()).write(value) };
            self.state.store(READY, Ordering::Release);
        }
        loop {
            if let Some(value) = self.get() {
                return value;
            }
            spin_loop();
        }
    }
}
