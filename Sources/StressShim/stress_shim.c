// See include/stress_shim.h.
#define _GNU_SOURCE
#include "stress_shim.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// Written by the handler, read by the coordinator thread's poll: a lock-free
// atomic int is async-signal-safe.
static atomic_int pending_signal;

static void on_signal(int signo) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&pending_signal, &expected, signo)) {
        // A second signal: the user insists. _exit is async-signal-safe.
        _exit(128 + signo);
    }
}

void crm_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int crm_signal_pending(void) { return atomic_load(&pending_signal); }

void crm_signal_clear(void) { atomic_store(&pending_signal, 0); }

int crm_pin_thread_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// The process's affinity mask at load, before any worker pins itself: the
// CPUs it was given (a cgroup cpuset or taskset may give fewer than are
// online, and need not start at CPU 0).
static int usable_cpus[CPU_SETSIZE];
static int usable_cpu_count;

__attribute__((constructor)) static void capture_usable_cpus(void) {
    cpu_set_t set;
    usable_cpu_count = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
            if (CPU_ISSET(cpu, &set)) usable_cpus[usable_cpu_count++] = cpu;
    }
    if (usable_cpu_count == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        if (online < 1) online = 1;
        if (online > CPU_SETSIZE) online = CPU_SETSIZE;
        for (int cpu = 0; cpu < online; cpu++) usable_cpus[usable_cpu_count++] = cpu;
    }
}

int crm_usable_cpu_count(void) { return usable_cpu_count; }

int crm_usable_cpu(int index) {
    return index >= 0 && index < usable_cpu_count ? usable_cpus[index] : -1;
}

// The word the two probe threads hand back and forth, alone on its lines,
// and the partner's report that it runs where it was asked to (1) or not (-1).
static _Alignas(128) atomic_long probe_word;
static _Alignas(128) atomic_int probe_ready;
static long probe_trips;

// The word is odd when the prober asks (2i+1), even when the partner has
// answered (2i+2), negative when the prober gives up. Both sides move it
// with compare-and-swap, so a give-up and a late answer cannot cross.
static void *probe_partner(void *arg) {
    if (crm_pin_thread_to_cpu((int)(intptr_t)arg) != 0) {
        atomic_store(&probe_ready, -1);
        return NULL;
    }
    atomic_store(&probe_ready, 1);
    for (long i = 0; i < probe_trips; i++) {
        for (;;) {
            long w = atomic_load_explicit(&probe_word, memory_order_acquire);
            if (w < 0) return NULL;
            if (w == 2 * i + 1 &&
                atomic_compare_exchange_strong_explicit(&probe_word, &w, 2 * i + 2, memory_order_acq_rel, memory_order_acquire))
                break;
        }
    }
    return NULL;
}

static long probe_elapsed_ns(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

double crm_cross_core_round_trip_ns(int cpu_a, int cpu_b, long trips, long budget_ns) {
    cpu_set_t saved;
    if (trips < 1 || budget_ns < 1 || pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) != 0) return -1;
    atomic_store(&probe_word, 0);
    atomic_store(&probe_ready, 0);
    probe_trips = trips;
    pthread_t partner;
    if (pthread_create(&partner, NULL, probe_partner, (void *)(intptr_t)cpu_b) != 0) return -1;
    int ready;
    while ((ready = atomic_load(&probe_ready)) == 0) {}
    // A partner that runs where asked waits for every trip, so the trips
    // are made even when this thread cannot be pinned; only then the
    // figure is not one of CPU a against CPU b and is not returned.
    int pinned = ready > 0 && crm_pin_thread_to_cpu(cpu_a) == 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long done = 0;
    int gave_up = 0;
    // The figure is the fastest batch of 64 trips: a trip that waited for
    // a descheduled thread (milliseconds on a busy machine) says nothing
    // about the line's travel, and a mean over few trips would be all wait.
    long batch_start = 0, best_batch = -1;
    for (long i = 0; i < trips && ready > 0 && !gave_up; i++) {
        atomic_store_explicit(&probe_word, 2 * i + 1, memory_order_release);
        // The clock is read every 1024 spins and every 64 trips: rarely
        // enough not to weigh on a fast trip (tens of ns).
        for (long spins = 1; atomic_load_explicit(&probe_word, memory_order_acquire) != 2 * i + 2; spins++) {
            if ((spins & 1023) == 0 && probe_elapsed_ns(&t0) > budget_ns) {
                long asked = 2 * i + 1;
                if (atomic_compare_exchange_strong_explicit(&probe_word, &asked, -1, memory_order_acq_rel, memory_order_acquire)) {
                    gave_up = 1;
                    break;
                }
            }
        }
        if (gave_up) break;
        done = i + 1;
        if ((done & 63) == 0) {
            long now = probe_elapsed_ns(&t0);
            if (best_batch < 0 || now - batch_start < best_batch) best_batch = now - batch_start;
            batch_start = now;
            if (now > budget_ns) break;
        }
    }
    if (ready > 0) atomic_store_explicit(&probe_word, -1, memory_order_release);
    pthread_join(partner, NULL);
    pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
    // Not one batch made in the budget: a thread was descheduled
    // throughout, which says nothing about the line's travel; no figure.
    if (!pinned || best_batch < 0) return -1;
    return (double)best_batch / 64.0;
}
