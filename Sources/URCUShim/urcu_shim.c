// Out-of-line half of URCUShim: registration and grace periods.
// See include/urcu_shim.h for the flavor and ThreadSanitizer rules.
#include "urcu_shim.h"
#include <stdatomic.h>

int crm_rcu_flavor_selected = CRM_RCU_MEMB;
char crm_rcu_gp_token;

static atomic_int registered_threads;
static atomic_ullong synchronize_count;
// crm_rcu_synchronize calls begun, and the highest of them that returned.
static _Atomic uint64_t gp_begun;
static _Atomic uint64_t gp_returned;

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

uint64_t crm_rcu_gp_begin(void) {
    // Taken before the grace period starts: every snapshot taken before
    // this increment is covered by this grace period.
    return atomic_fetch_add(&gp_begun, 1) + 1;
}

void crm_rcu_gp_end(uint64_t ticket) {
    uint64_t seen = atomic_load(&gp_returned);
    while (seen < ticket && !atomic_compare_exchange_weak(&gp_returned, &seen, ticket)) {}
    atomic_fetch_add_explicit(&synchronize_count, 1, memory_order_relaxed);
}

static atomic_int crm_rcu_inject_poll_early;
void crm_rcu_set_inject_poll_early(int on) { atomic_store(&crm_rcu_inject_poll_early, on); }

void crm_rcu_synchronize(void) {
    uint64_t ticket = crm_rcu_gp_begin();
    switch (crm_rcu_flavor_selected) {
    case CRM_RCU_QSBR: urcu_qsbr_synchronize_rcu(); break;
    case CRM_RCU_MB: urcu_mb_synchronize_rcu(); break;
    case CRM_RCU_BP: urcu_bp_synchronize_rcu(); break;
    default: urcu_memb_synchronize_rcu(); break;
    }
#ifdef CRM_TSAN
    __tsan_acquire(&crm_rcu_gp_token);
#endif
    crm_rcu_gp_end(ticket);
}

uint64_t crm_rcu_gp_snapshot(void) {
    // The caller's unlink stores must be visible before gp_begun is read
    // (Linux's get_state_synchronize_rcu starts with smp_mb()): otherwise a
    // grace period could begin after this load yet before the unlink is
    // visible, and a reader entering then would still find the object when
    // that grace period ends. A seq_cst load alone does not order an earlier
    // store (x86's store buffer, aarch64's ldar after str).
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_load(&gp_begun);
}

int crm_rcu_gp_elapsed(uint64_t snapshot) {
    // The planted bug gp-poll-early: the grace period whose ticket the
    // snapshot read, begun before the snapshot and so perhaps before the
    // caller's unlink was visible, counts as covering it.
    if (atomic_load(&gp_returned) + (atomic_load_explicit(&crm_rcu_inject_poll_early, memory_order_relaxed) ? 1 : 0) <= snapshot) return 0;
#ifdef CRM_TSAN
    __tsan_acquire(&crm_rcu_gp_token);
#endif
    return 1;
}

uint64_t crm_rcu_synchronize_count(void) { return atomic_load(&synchronize_count); }
int crm_rcu_get_flavor(void) { return crm_rcu_flavor_selected; }
