// Out-of-line half of URCUShim: registration, grace periods and call_rcu.
// See include/urcu_shim.h for the flavor and ThreadSanitizer rules.
#include "urcu_shim.h"
#include <stdatomic.h>

// urcu/call-rcu.h declares call_rcu and rcu_barrier through the name map of
// whichever flavor header came first, so the other flavors' exported entry
// points are declared here by hand (liburcu 0.13 exports all of them).
#define CRM_DECLARE_FLAVOR(f)                                                  \
    void urcu_##f##_call_rcu(struct rcu_head *, void (*)(struct rcu_head *)); \
    void urcu_##f##_barrier(void);
CRM_DECLARE_FLAVOR(memb)
CRM_DECLARE_FLAVOR(qsbr)
CRM_DECLARE_FLAVOR(mb)
CRM_DECLARE_FLAVOR(bp)

int crm_rcu_flavor_selected = CRM_RCU_MEMB;
char crm_rcu_gp_token;

static atomic_int registered_threads;
static atomic_ullong synchronize_count;
// crm_rcu_synchronize calls begun, and the highest of them that returned.
static atomic_ullong gp_begun;
static atomic_ullong gp_returned;
static atomic_ullong callbacks_queued;
static atomic_ullong callbacks_run;

int crm_rcu_tsan_build(void) {
#ifdef CRM_TSAN
    return 1;
#else
    return 0;
#endif
}

int crm_rcu_select_flavor(int flavor) {
    if (flavor < CRM_RCU_MEMB || flavor > CRM_RCU_BP) return -1;
    if (flavor == crm_rcu_flavor_selected) return 0;
    if (atomic_load(&registered_threads) != 0) return -1;
    // Callbacks queued on the old flavor run on its own call_rcu thread and
    // only that flavor's barrier waits for them: drain them before the
    // switch, or a later barrier (of the new flavor) returns while they can
    // still run on memory their owner has freed.
    if (atomic_load(&callbacks_queued) != atomic_load(&callbacks_run)) {
        crm_rcu_barrier_flavor(crm_rcu_flavor_selected);
    }
    crm_rcu_flavor_selected = flavor;
    return 0;
}

void crm_rcu_register_thread(void) {
    atomic_fetch_add(&registered_threads, 1);
    switch (crm_rcu_flavor_selected) {
    case CRM_RCU_QSBR: urcu_qsbr_register_thread(); break;
    case CRM_RCU_MB: urcu_mb_register_thread(); break;
    case CRM_RCU_BP: urcu_bp_register_thread(); break;
    default: urcu_memb_register_thread(); break;
    }
}

void crm_rcu_unregister_thread(void) {
    switch (crm_rcu_flavor_selected) {
    case CRM_RCU_QSBR: urcu_qsbr_unregister_thread(); break;
    case CRM_RCU_MB: urcu_mb_unregister_thread(); break;
    case CRM_RCU_BP: urcu_bp_unregister_thread(); break;
    default: urcu_memb_unregister_thread(); break;
    }
    atomic_fetch_sub(&registered_threads, 1);
}

void crm_rcu_synchronize(void) {
    // Taken before the grace period starts: every snapshot taken before
    // this increment is covered by this grace period.
    uint64_t ticket = atomic_fetch_add(&gp_begun, 1) + 1;
    switch (crm_rcu_flavor_selected) {
    case CRM_RCU_QSBR: urcu_qsbr_synchronize_rcu(); break;
    case CRM_RCU_MB: urcu_mb_synchronize_rcu(); break;
    case CRM_RCU_BP: urcu_bp_synchronize_rcu(); break;
    default: urcu_memb_synchronize_rcu(); break;
    }
#ifdef CRM_TSAN
    __tsan_acquire(&crm_rcu_gp_token);
#endif
    uint64_t seen = atomic_load(&gp_returned);
    while (seen < ticket && !atomic_compare_exchange_weak(&gp_returned, &seen, ticket)) {}
    atomic_fetch_add_explicit(&synchronize_count, 1, memory_order_relaxed);
}

uint64_t crm_rcu_gp_snapshot(void) { return atomic_load(&gp_begun); }

int crm_rcu_gp_elapsed(uint64_t snapshot) {
    if (atomic_load(&gp_returned) <= snapshot) return 0;
#ifdef CRM_TSAN
    __tsan_acquire(&crm_rcu_gp_token);
#endif
    return 1;
}

void crm_rcu_barrier(void) { crm_rcu_barrier_flavor(crm_rcu_flavor_selected); }

void crm_rcu_barrier_flavor(int flavor) {
    switch (flavor) {
    case CRM_RCU_QSBR: urcu_qsbr_barrier(); break;
    case CRM_RCU_MB: urcu_mb_barrier(); break;
    case CRM_RCU_BP: urcu_bp_barrier(); break;
    default: urcu_memb_barrier(); break;
    }
}

uint64_t crm_rcu_synchronize_count(void) { return atomic_load(&synchronize_count); }
uint64_t crm_rcu_callbacks_queued(void) { return atomic_load(&callbacks_queued); }
uint64_t crm_rcu_callbacks_run(void) { return atomic_load(&callbacks_run); }

static void crm_rcu_trampoline(struct rcu_head *head) {
    struct crm_rcu_work *work = caa_container_of(head, struct crm_rcu_work, head);
#ifdef CRM_TSAN
    // The queue hand-off (wfcqueue) is invisible to TSan: pair with the
    // release in crm_rcu_call, then with every reader's unlock.
    __tsan_acquire(work);
    __tsan_acquire(&crm_rcu_gp_token);
#endif
    atomic_fetch_add_explicit(&callbacks_run, 1, memory_order_relaxed);
    work->fn(work->owner, work->arg);
}

void crm_rcu_call(struct crm_rcu_work *work) {
    atomic_fetch_add_explicit(&callbacks_queued, 1, memory_order_relaxed);
#ifdef CRM_TSAN
    __tsan_release(work);
#endif
    switch (crm_rcu_flavor_selected) {
    case CRM_RCU_QSBR: urcu_qsbr_call_rcu(&work->head, crm_rcu_trampoline); break;
    case CRM_RCU_MB: urcu_mb_call_rcu(&work->head, crm_rcu_trampoline); break;
    case CRM_RCU_BP: urcu_bp_call_rcu(&work->head, crm_rcu_trampoline); break;
    default: urcu_memb_call_rcu(&work->head, crm_rcu_trampoline); break;
    }
}

int crm_rcu_get_flavor(void) { return crm_rcu_flavor_selected; }
