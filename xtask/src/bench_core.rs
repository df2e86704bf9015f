// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask bench-core` (filled in with the benches).

pub fn run() -> bool {
    false
}
