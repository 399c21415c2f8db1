// See include/stress_shim.h.
#define _GNU_SOURCE
#include "stress_shim.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
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
