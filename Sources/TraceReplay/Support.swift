import ConcurrentRmap
import StressSupport
#if canImport(Glibc)
import Glibc
#endif

// Threads and the clock come from StressSupport; the ready queue is the
// replay's own.

/// The mms ready to run, lowest next step first, under one mutex; idle
/// workers sleep on its condition variable. A binary heap of (next step, mm)
/// in one array. The replay follows the trace's order within a window: no
/// worker runs a step more than `window` steps past the earliest step
/// another worker is at (1 thread, or a window of 1: the trace's order).
final class ReadyQueue: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var heap: [UInt64] = []
    /// Workers holding an mm (its steps may release others).
    private var busy = 0
    private var closed = false
    /// Per worker, the step of the mm it holds (`Step.end`: none).
    private var held: [UInt32]
    /// How far (in steps) a worker may run ahead of the earliest held step.
    private let window: UInt64

    init(capacity: Int, workers: Int, window: Int) {
        held = [UInt32](repeating: Step.end, count: workers)
        self.window = UInt64(window)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        heap.reserveCapacity(capacity)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    @inline(__always) private static func key(_ step: UInt32, _ mm: UInt32) -> UInt64 { UInt64(step) << 32 | UInt64(mm) }

    private func siftUp(_ i0: Int) {
        var i = i0
        while i > 0 {
            let p = (i - 1) / 2
            if heap[p] <= heap[i] { break }
            heap.swapAt(p, i)
            i = p
        }
    }

    private func popMin() -> UInt64 {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && heap[l] < heap[m] { m = l }
                if r < heap.count && heap[r] < heap[m] { m = r }
                if m == i { break }
                heap.swapAt(m, i)
                i = m
            }
        }
        return top
    }

    /// Adds an mm whose next step is `step`, from a worker holding an mm or
    /// before the workers start.
    func push(mm: UInt32, step: UInt32) {
        pthread_mutex_lock(mutex)
        heap.append(ReadyQueue.key(step, mm))
        siftUp(heap.count - 1)
        pthread_cond_signal(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Takes the ready mm with the lowest next step for worker `worker`,
    /// and the step its batch must stop before: the next ready mm's step,
    /// and at most `window` steps past the earliest step another worker
    /// holds. Waits while the first ready mm is itself that far ahead. nil
    /// when every mm is done (nothing ready and no worker holding one) or the
    /// queue was closed. The caller then holds the mm and must `finish`.
    func take(worker: Int) -> (mm: UInt32, limit: UInt32)? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while true {
            if closed { return nil }
            if heap.isEmpty {
                if busy == 0 {
                    closed = true
                    pthread_cond_broadcast(cond)
                    return nil
                }
                pthread_cond_wait(cond, mutex)
                continue
            }
            let heldMin = held.min() ?? Step.end
            let first = UInt32(heap[0] >> 32)
            if heldMin != Step.end && UInt64(first) >= UInt64(heldMin) + window {
                pthread_cond_wait(cond, mutex)
                continue
            }
            let k = popMin()
            busy += 1
            held[worker] = first
            var limit = heap.isEmpty ? Step.end : UInt32(heap[0] >> 32)
            var others = Step.end
            for (w, h) in held.enumerated() where w != worker { others = min(others, h) }
            if others != Step.end { limit = UInt32(min(UInt64(limit), UInt64(others) + window)) }
            return (UInt32(truncatingIfNeeded: k), limit)
        }
    }

    /// Worker `worker` is done with its mm; `next` is the mm's next step
    /// (`Step.end`: the mm has none left).
    func finish(worker: Int, mm: UInt32, next: UInt32) {
        pthread_mutex_lock(mutex)
        busy -= 1
        held[worker] = Step.end
        if next != Step.end {
            heap.append(ReadyQueue.key(next, mm))
            siftUp(heap.count - 1)
        }
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Stops the replay: every `take` returns nil from now on.
    func close() {
        pthread_mutex_lock(mutex)
        closed = true
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }
}
