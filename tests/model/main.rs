// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Model-based tests: random map / unmap / IRQ / context-switch / migration /
//! read / write sequences over several CPUs with several tasks each, run on
//! the core with the simulated MMU, compared with a reference model after
//! every step, at both paging depths. Each strategy runs at least 10^6
//! steps at each depth per `cargo test`.
//!
//! The last two tests plant a hardware bug (a skipped local flush, a global
//! flush that stays local) and check that the model notices: the model can
//! fail.

mod hw;
mod system;

use gmem_kmap::PagingDepth;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use hw::Faults;
use system::{Coverage, Op, Strategy as Kind, System};

const STEPS_PER_RUN: u64 = 1_000_000;
const CASES: u32 = 2_000;

#[derive(Clone, Debug)]
struct Scenario {
    nr_cpus: u32,
    tasks_per_cpu: usize,
    nr_frames: usize,
    ops: Vec<Op>,
}

fn op(map_bias: u32) -> impl Strategy<Value = Op> {
    let sel = any::<u8>;
    prop_oneof![
        4 + 3 * map_bias => (sel(), sel()).prop_map(|(cpu, frame)| Op::Map { cpu, frame }),
        5 => sel().prop_map(|cpu| Op::Unmap { cpu }),
        1 => (sel(), sel()).prop_map(|(cpu, pick)| Op::UnmapOutOfOrder { cpu, pick }),
        2 => (sel(), sel(), any::<u16>())
            .prop_map(|(cpu, frame, offset)| Op::IrqMapUnmap { cpu, frame, offset }),
        3 => (sel(), sel()).prop_map(|(cpu, pick)| Op::Switch { cpu, pick }),
        1 => (sel(), sel()).prop_map(|(pick, to)| Op::Migrate { pick, to }),
        5 => (sel(), sel(), any::<u16>()).prop_map(|(cpu, pick, offset)| Op::Read { cpu, pick, offset }),
        3 => (sel(), sel(), any::<u16>(), any::<u64>())
            .prop_map(|(cpu, pick, offset, value)| Op::Write { cpu, pick, offset, value }),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1..=4u32, 1..=3usize, 2..=24usize, 0..=3u32).prop_flat_map(
        |(nr_cpus, tasks_per_cpu, nr_frames, map_bias)| {
            proptest::collection::vec(op(map_bias), 500..=600).prop_map(move |ops| Scenario {
                nr_cpus,
                tasks_per_cpu,
                nr_frames,
                ops,
            })
        },
    )
}

/// Runs `scenario`, stopping at the first divergence.
fn run(
    kind: Kind,
    faults: Faults,
    depth: PagingDepth,
    sc: &Scenario,
    cov: &mut Coverage,
) -> Result<(), String> {
    let mut sys = System::new(
        kind,
        faults,
        depth,
        sc.nr_cpus,
        sc.tasks_per_cpu,
        sc.nr_frames,
    );
    let result = sc
        .ops
        .iter()
        .enumerate()
        .try_for_each(|(i, op)| sys.step(op).map_err(|e| format!("step {i} ({op:?}): {e}")));
    cov.add(&sys.coverage);
    result
}

fn runner(cases: u32, max_shrink_iters: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        max_shrink_iters,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs the model for `kind` and returns what it covered, or the minimal
/// failing scenario.
fn check(
    kind: Kind,
    faults: Faults,
    depth: PagingDepth,
    cases: u32,
    max_shrink_iters: u32,
) -> Result<Coverage, TestError<Scenario>> {
    // The runner takes a `Fn`: the tally needs interior mutability.
    let cov = std::cell::RefCell::new(Coverage::default());
    runner(cases, max_shrink_iters).run(&scenario(), |sc| {
        run(kind, faults, depth, &sc, &mut cov.borrow_mut()).map_err(TestCaseError::fail)
    })?;
    Ok(cov.into_inner())
}

fn check_strategy(kind: Kind, depth: PagingDepth) -> Coverage {
    let shrink = Config::default().max_shrink_iters;
    let cov = check(kind, Faults::default(), depth, CASES, shrink)
        .unwrap_or_else(|e| panic!("{kind:?} at {depth:?}: {e}"));
    eprintln!("{kind:?} at {depth:?}: {cov:?}, 0 divergences");
    assert!(cov.steps >= STEPS_PER_RUN, "only {} steps", cov.steps);
    assert!(cov.maps > 0 && cov.reads > 0 && cov.depth_exceeded > 0 && cov.irq_nested > 0);
    assert!(cov.switches_holding > 0 && cov.migrations > 0);
    cov
}

fn window_matches(depth: PagingDepth) {
    let cov = check_strategy(Kind::Window, depth);
    assert!(cov.out_of_order > 0 && cov.migrations_refused > 0);
}

fn reinsert_matches(depth: PagingDepth) {
    let cov = check_strategy(Kind::Reinsert, depth);
    assert!(cov.last_user_unmaps > 0);
}

#[test]
fn window_matches_the_reference_model_at_4_levels() {
    window_matches(PagingDepth::Four);
}

#[test]
fn window_matches_the_reference_model_at_5_levels() {
    window_matches(PagingDepth::Five);
}

#[test]
fn reinsert_matches_the_reference_model_at_4_levels() {
    reinsert_matches(PagingDepth::Four);
}

#[test]
fn reinsert_matches_the_reference_model_at_5_levels() {
    reinsert_matches(PagingDepth::Five);
}

/// The model must fail when the hardware is wrong, or it proves nothing.
fn expect_caught(kind: Kind, faults: Faults) {
    for depth in PagingDepth::ALL {
        match check(kind, faults, depth, 200, 100) {
            Ok(cov) => panic!(
                "{faults:?} went unnoticed at {depth:?} over {} steps",
                cov.steps
            ),
            Err(TestError::Fail(why, _)) => eprintln!("{faults:?} caught at {depth:?}: {why}"),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn planted_missing_local_flush_is_caught() {
    let faults = Faults {
        skip_local_flush: true,
        ..Faults::default()
    };
    expect_caught(Kind::Window, faults);
}

#[test]
fn planted_local_only_shootdown_is_caught() {
    let faults = Faults {
        local_only_global_flush: true,
        ..Faults::default()
    };
    expect_caught(Kind::Reinsert, faults);
}
