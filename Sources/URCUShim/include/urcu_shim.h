// URCUShim: the one C target that includes liburcu.
//
// Swift cannot import liburcu's function-like macros, and mixing _LGPL_SOURCE
// settings across modules breaks the build, so every urcu include lives here.
// The flavor (memb, qsbr, mb, bp) is chosen once per process with
// crm_rcu_select_flavor() before any thread registers; the read side is a
// switch on that value over liburcu's static inline fast paths, so a
// read-side critical section costs about a nanosecond and no call.
//
// ThreadSanitizer builds (CRM_TSAN): liburcu 0.13 synchronizes with inline-asm fences,
// futexes and membarrier, none of which TSan sees. When the C side is built
// with -fsanitize=thread we call the exported (uninstrumented) functions
// instead of the inlines and add explicit happens-before edges:
//   * read-unlock releases the grace-period token; synchronize and a polled
//     grace period found elapsed acquire it afterwards. So whatever a reader
//     did before unlocking happens-before the reclaimer frees the object.
//   * crm_rcu_publish() releases on the published address and
//     crm_rcu_deref_acquire() acquires on it, for pointers published by C.
// Swift Synchronization.Atomic release/acquire pairs are understood by TSan
// without help.
#ifndef CRM_URCU_SHIM_H
#define CRM_URCU_SHIM_H

#include <stdint.h>
#include <stddef.h>

// CRM_TSAN is defined by Package.swift when CRMAP_TSAN=1 (for the C target and
// for Swift's clang importer alike, which does not see -fsanitize=thread).
// crm_rcu_tsan_header() lets Swift check that both halves agree.

#ifndef CRM_TSAN
#  define _LGPL_SOURCE 1
#endif
#include <urcu/urcu-memb.h>
#include <urcu/urcu-mb.h>
#include <urcu/urcu-qsbr.h>
#include <urcu/urcu-bp.h>

#ifdef CRM_TSAN
#  include <sanitizer/tsan_interface.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/// liburcu flavors. The numbering is part of the Swift API (RCUFlavor).
enum crm_rcu_flavor {
    CRM_RCU_MEMB = 0,
    CRM_RCU_QSBR = 1,
    CRM_RCU_MB = 2,
    CRM_RCU_BP = 3,
};

/// The process-wide flavor. Written once by crm_rcu_select_flavor() while no
/// thread is registered; read on every read-side entry (a predictable branch).
extern int crm_rcu_flavor_selected;

/// Grace-period token for TSan (see top of file). Never dereferenced.
extern char crm_rcu_gp_token;

/// Returns 1 when the shim was built for ThreadSanitizer.
int crm_rcu_tsan_build(void);

/// The flavor selected for the process.
int crm_rcu_get_flavor(void);

/// Selects the flavor for the whole process. Returns 0, or -1 when threads of
/// another flavor are still registered (the choice cannot change then).
/// Nothing is ever queued on call_rcu: the model frees through polled grace
/// periods (below), so no callback can outlive a flavor switch.
int crm_rcu_select_flavor(int flavor);

void crm_rcu_register_thread(void);
void crm_rcu_unregister_thread(void);
/// Must not be called inside a read-side critical section or with a lock that
/// a reader may wait for: readers would never finish and this never returns.
void crm_rcu_synchronize(void);
/// Grace periods completed by crm_rcu_synchronize calls in this process.
uint64_t crm_rcu_synchronize_count(void);
/// Polled grace periods, as Linux's get_state_synchronize_rcu() and
/// poll_state_synchronize_rcu(): take a snapshot after unlinking an object;
/// once `crm_rcu_gp_elapsed(snapshot)` is true, a crm_rcu_synchronize that
/// began after the snapshot has returned, whoever called it, and the object
/// may be freed without a grace period of one's own. The snapshot counts
/// crm_rcu_synchronize calls begun; elapsed compares it with the highest
/// call that has returned (and, under TSan, acquires the grace-period token
/// as a return from crm_rcu_synchronize does).
uint64_t crm_rcu_gp_snapshot(void);
int crm_rcu_gp_elapsed(uint64_t snapshot);
/// The two halves of crm_rcu_synchronize's bookkeeping around the wait:
/// begin takes a ticket (before the grace period starts), end records that
/// the ticket's grace period returned. A controlled run calls them around
/// its modelled wait, so explore runs the same polling code as real runs.
uint64_t crm_rcu_gp_begin(void);
void crm_rcu_gp_end(uint64_t ticket);
/// Nonzero plants the gp-poll-early bug in crm_rcu_gp_elapsed (an
/// off-by-one that frees one grace period too early). Set per machine.
void crm_rcu_set_inject_poll_early(int on);
/// 1 when the header was compiled for ThreadSanitizer in the including
/// module; Swift code compares it with crm_rcu_tsan_build() at start-up.
static inline int crm_rcu_tsan_header(void) {
#ifdef CRM_TSAN
    return 1;
#else
    return 0;
#endif
}

// ---- read side: static inline so release builds need no call ----

static inline void crm_rcu_read_lock(void) {
#ifdef CRM_TSAN
    switch (crm_rcu_flavor_selected) {
    case CRM_RCU_QSBR: urcu_qsbr_read_lock(); break;
    case CRM_RCU_MB: urcu_mb_read_lock(); break;
    case CRM_RCU_BP: urcu_bp_read_lock(); break;
    default: urcu_memb_read_lock(); break;
    }
#else
    // memb, the default, first: one compare on the common path.
    if (__builtin_expect(crm_rcu_flavor_selected == CRM_RCU_MEMB, 1)) {
        _urcu_memb_read_lock();
        return;
    }
    switch (crm_rcu_flavor_selected) {
    case CRM_RCU_QSBR: _urcu_qsbr_read_lock(); break;
    case CRM_RCU_MB: _urcu_mb_read_lock(); break;
    case CRM_RCU_BP: _urcu_bp_read_lock(); break;
    default: _urcu_memb_read_lock(); break;
    }
#endif
}

static inline void crm_rcu_read_unlock(void) {
#ifdef CRM_TSAN
    __tsan_release(&crm_rcu_gp_token);
    switch (crm_rcu_flavor_selected) {
    case CRM_RCU_QSBR: urcu_qsbr_read_unlock(); break;
    case CRM_RCU_MB: urcu_mb_read_unlock(); break;
    case CRM_RCU_BP: urcu_bp_read_unlock(); break;
    default: urcu_memb_read_unlock(); break;
    }
#else
    if (__builtin_expect(crm_rcu_flavor_selected == CRM_RCU_MEMB, 1)) {
        _urcu_memb_read_unlock();
        return;
    }
    switch (crm_rcu_flavor_selected) {
    case CRM_RCU_QSBR: _urcu_qsbr_read_unlock(); break;
    case CRM_RCU_MB: _urcu_mb_read_unlock(); break;
    case CRM_RCU_BP: _urcu_bp_read_unlock(); break;
    default: _urcu_memb_read_unlock(); break;
    }
#endif
}

/// qsbr only: announce a quiescent state (no read-side section is open).
/// A no-op for the other flavors, so callers need not know the flavor.
static inline void crm_rcu_quiescent_state(void) {
    if (crm_rcu_flavor_selected == CRM_RCU_QSBR) {
#ifdef CRM_TSAN
        __tsan_release(&crm_rcu_gp_token);
        urcu_qsbr_quiescent_state();
#else
        _urcu_qsbr_quiescent_state();
#endif
    }
}

/// qsbr only: stop/resume taking part in grace periods around a blocking wait.
static inline void crm_rcu_thread_offline(void) {
    if (crm_rcu_flavor_selected == CRM_RCU_QSBR) {
#ifdef CRM_TSAN
        __tsan_release(&crm_rcu_gp_token);
        urcu_qsbr_thread_offline();
#else
        _urcu_qsbr_thread_offline();
#endif
    }
}
static inline void crm_rcu_thread_online(void) {
    if (crm_rcu_flavor_selected == CRM_RCU_QSBR) {
#ifdef CRM_TSAN
        urcu_qsbr_thread_online();
#else
        _urcu_qsbr_thread_online();
#endif
    }
}

/// TSan-only edges for links published through C (no-ops otherwise).
static inline void crm_rcu_publish(const void *addr) {
#ifdef CRM_TSAN
    __tsan_release((void *)addr);
#else
    (void)addr;
#endif
}
static inline void crm_rcu_deref_acquire(const void *addr) {
#ifdef CRM_TSAN
    __tsan_acquire((void *)addr);
#else
    (void)addr;
#endif
}

#ifdef __cplusplus
}
#endif
#endif
