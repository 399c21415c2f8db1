// StressShim: process-level services of the stress tool that Swift cannot
// do safely itself: signal handling (a handler may only touch
// async-signal-safe state, so it lives in C), CPU pinning, and a probe of
// the cost of moving a cache line between two CPUs.
#ifndef CRM_STRESS_SHIM_H
#define CRM_STRESS_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Installs handlers for SIGINT and SIGTERM. The first signal is only
/// recorded (crm_signal_pending() returns it) so that the tool can stop its
/// workers, report and exit 128 + signo; a second signal of either kind
/// exits the process at once with 128 + its number. Idempotent.
void crm_signals_install(void);

/// The first SIGINT/SIGTERM received since install, or 0.
int crm_signal_pending(void);

/// Forgets a recorded signal (tests only).
void crm_signal_clear(void);

/// Binds the calling thread to one CPU. Returns 0, or an errno value.
int crm_pin_thread_to_cpu(int cpu);

/// How many CPUs this process may run on: its affinity mask as it was when
/// the program was loaded (before any thread pinned itself), as `nproc`
/// counts them. A container or `taskset` can allow fewer CPUs than are
/// online, and not CPUs 0..n-1.
int crm_usable_cpu_count(void);

/// The `index`-th CPU (0-based, ascending) of that mask, or -1 when out of
/// range.
int crm_usable_cpu(int index);

/// Nanoseconds for one round trip of a cache line between CPU `cpu_a` and
/// CPU `cpu_b` (two threads pinned there take turns writing one word),
/// averaged over up to `trips` made within `budget_ns` (a busy machine
/// that deschedules either thread makes a trip take milliseconds: the
/// budget keeps the probe short whatever happens); -1 when the threads
/// cannot be placed or not one trip was made within the budget. The calling thread runs on `cpu_a` meanwhile and gets
/// its former CPU set back.
/// On a VM the figure can change while a process runs, as the hypervisor
/// moves the virtual CPUs between cores that share a cache and cores that
/// do not.
double crm_cross_core_round_trip_ns(int cpu_a, int cpu_b, long trips, long budget_ns);

#ifdef __cplusplus
}
#endif
#endif
