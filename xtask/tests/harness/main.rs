//! The harness from the outside: `cargo xtask test` run as a user runs it, on the real
//! Docker daemon and in the real QEMU guest, against pauses that each break one promise,
//! and interrupted midway (Ctrl-C, SIGTERM, its deadline, SIGKILL then `cargo xtask clean`).
//! After every run, nothing it made may be left: no guest, daemon, bridge, temp dir or mount.
//! One file per area; `support.rs` holds what they share. The trials are listed here, in the
//! order they run.
//!
//! Needs root, dockerd, gcc with a static libc, and the images' host programs (and QEMU and
//! a kernel for the vm trials); where any is missing those trials are ignored, the reason printed.

use libtest_mimic::{Arguments, Trial};

mod broken_pauses;
mod cleanup;
mod compare;
mod concurrent;
mod cri;
mod faults;
mod load;
mod outbound;
mod podman;
mod support;
mod vm;

use support::SharedState;

fn main() -> std::process::ExitCode {
    let mut arguments = Arguments::from_args();
    // Each run starts its own dockerd; one at a time keeps them from competing for two cores.
    arguments.test_threads = Some(1);
    let missing = support::missing_prerequisite();
    if let Some(reason) = &missing {
        eprintln!("note: the harness trials are ignored: {reason}");
    }
    let vm_missing = missing.clone().or_else(support::missing_vm_prerequisite);
    if let (None, Some(reason)) = (&missing, &vm_missing) {
        eprintln!("note: the vm trials are ignored: {reason}");
    }
    // What a run may leave changed on this machine: nothing. Taken before any trial runs.
    let before = std::sync::Arc::new(SharedState::now());
    let mut trials: Vec<Trial> = broken_pauses::trials();
    trials.push(Trial::test("cleanup::after_a_passing_run", cleanup::passing_run_cleans_up));
    trials.push(Trial::test("cleanup::after_the_run_deadline", cleanup::timed_out_run_cleans_up));
    trials.push(Trial::test("cleanup::after_a_panic", || cleanup::panicking_run_cleans_up("host")));
    trials.push(Trial::test("load_errors_stop_the_run_before_any_container", load::load_error_stops_early));
    trials.push(Trial::test("compare::a_broken_pause_beside_ours", compare::compare_a_broken_pause_beside_ours));
    trials.push(Trial::test("exec::outliving_its_container_ends_at_once", || {
        faults::exec_outliving_its_container("host")
    }));
    trials.push(Trial::test("concurrent::a_run_on_a_shared_daemon_beside_a_pod", concurrent::run_on_a_shared_daemon));
    trials.push(Trial::test("faults::an_app_that_ignores_sigterm", faults::app_ignoring_sigterm));
    trials.push(Trial::test("faults::pause_killed_under_its_apps", faults::pause_killed_under_its_apps));
    trials.push(Trial::test("faults::dockerd_killed_mid_scenario", || faults::daemon_killed_mid_scenario("dockerd")));
    trials.push(Trial::test("faults::containerd_killed_mid_scenario", || {
        faults::daemon_killed_mid_scenario("containerd")
    }));
    trials.push(Trial::test("cri::sigkill_then_clean_leaves_nothing", cri::cri_sigkill_then_clean));
    trials.push(Trial::test(
        "podman::beside_another_run_gives_back_what_it_made",
        podman::podman_run_beside_another_run_gives_back_what_it_made,
    ));
    // What every runtime promises, for each runtime of the registry: a new one is tested by
    // these as soon as it is listed there.
    for runtime in xtask::RUNTIMES.map(|kind| kind.name()) {
        trials.push(Trial::test(format!("{runtime}::a_passing_run_leaves_nothing"), move || {
            cleanup::seed_pod_run_cleans_up(runtime)
        }));
        trials.push(Trial::test(format!("{runtime}::ctrl_c_leaves_nothing"), move || {
            cleanup::interrupted_run_on_cleans_up(runtime)
        }));
        trials.push(Trial::test(format!("{runtime}::two_runs_on_this_machine_at_once"), move || {
            concurrent::two_runs_at_once(runtime)
        }));
        trials.push(Trial::test(format!("{runtime}::a_connection_from_the_pod_is_counted"), move || {
            outbound::outbound_connection_is_counted(runtime)
        }));
    }
    let shared_state = std::sync::Arc::clone(&before);
    trials.push(Trial::test("shared::this_machine_is_as_before", move || shared_state.unchanged()));
    let mut trials: Vec<Trial> = trials.into_iter().map(|trial| trial.with_ignored_flag(missing.is_some())).collect();
    let vm_trials = [
        Trial::test("vm::ctrl_c_leaves_no_guest", || vm::vm_signal_leaves_nothing(2)),
        Trial::test("vm::sigterm_leaves_no_guest", || vm::vm_signal_leaves_nothing(15)),
        Trial::test("vm::sigkill_then_clean_leaves_nothing", vm::vm_sigkill_then_clean),
        Trial::test("vm::a_dead_guest_ends_the_wait_at_once", vm::vm_dead_guest_is_reported),
        Trial::test("vm::pod_shell_runs_piped_commands_then_tears_down", vm::vm_pod_shell),
        Trial::test("vm::pod_shell_on_a_terminal", vm::vm_pod_on_a_terminal),
        Trial::test("vm::a_guest_kernel_lockup_boots_a_new_guest_for_the_pod_shell", vm::vm_pod_lockup),
        Trial::test("vm::a_panic_leaves_no_guest", || cleanup::panicking_run_cleans_up("vm")),
        Trial::test("vm::a_guest_kernel_lockup_reruns_the_scenario_on_a_new_guest", vm::vm_lockup_reruns),
        Trial::test("vm::exec_outliving_its_container_ends_at_once", || faults::exec_outliving_its_container("vm")),
        Trial::test("vm::clean_spares_a_live_pod", vm::clean_spares_a_live_pod),
        Trial::test("vm::a_frozen_guest_ends_the_wait_at_once", vm::vm_frozen_guest_is_reported),
        Trial::test("vm::guest_out_of_memory_and_disk_full", vm::vm_guest_out_of_memory_and_disk_full),
    ];
    trials.extend(vm_trials.into_iter().map(|trial| trial.with_ignored_flag(vm_missing.is_some())));
    libtest_mimic::run(&arguments, trials).exit_code()
}
