//! The waiting queue under both policies.

use std::collections::{BTreeSet, VecDeque};

use super::config::Policy;
use super::request::Handle;

/// Requests waiting to be admitted, in admission order.
///
/// - fcfs: a deque; new requests join the back, preempted ones the front.
/// - priority: ordered by `(priority, arrival)`, lower first; preempted requests simply rejoin
///   at their place (a priority queue has no front to prepend to, as in vLLM). Arrival numbers
///   are unique, so the id tie-break of `SPEC.md` §6 is never needed. An ordered set: insert,
///   pop and remove stay O(log n) however long the queue grows (a sorted deque, tried for the
///   explorer's cheaper copies, made a 400,000-request priority simulation with every request
///   waiting at once take twice as long, and gave the explorer no measurable gain in the
///   release build).
#[derive(Debug)]
pub(crate) enum WaitingQueue {
    Fcfs(VecDeque<Handle>),
    Priority(BTreeSet<(i64, u64, Handle)>),
}

// By hand for `clone_from`, which reuses the deques (the explorer's copies of a state).
impl Clone for WaitingQueue {
    fn clone(&self) -> WaitingQueue {
        match self {
            WaitingQueue::Fcfs(q) => WaitingQueue::Fcfs(q.clone()),
            WaitingQueue::Priority(q) => WaitingQueue::Priority(q.clone()),
        }
    }

    fn clone_from(&mut self, source: &WaitingQueue) {
        // `clone_from` refills a deque element by element and rebuilds a set node by node; a
        // copy is mostly made into a sibling state whose queue is the same, which a comparison
        // finds first.
        match (self, source) {
            (WaitingQueue::Fcfs(d), WaitingQueue::Fcfs(s)) => {
                if d != s {
                    d.clone_from(s);
                }
            }
            (WaitingQueue::Priority(d), WaitingQueue::Priority(s)) => {
                if d != s {
                    d.clone_from(s);
                }
            }
            (d, s) => *d = s.clone(),
        }
    }
}

impl WaitingQueue {
    pub(crate) fn new(policy: Policy) -> WaitingQueue {
        match policy {
            Policy::Fcfs => WaitingQueue::Fcfs(VecDeque::new()),
            Policy::Priority => WaitingQueue::Priority(BTreeSet::new()),
        }
    }

    /// A new request joins the queue.
    pub(crate) fn push_back(&mut self, h: Handle, priority: i64, arrival: u64) {
        match self {
            WaitingQueue::Fcfs(q) => q.push_back(h),
            WaitingQueue::Priority(q) => {
                q.insert((priority, arrival, h));
            }
        }
    }

    /// A preempted request rejoins the queue.
    #[inline]
    pub(crate) fn push_front(&mut self, h: Handle, priority: i64, arrival: u64) {
        match self {
            WaitingQueue::Fcfs(q) => q.push_front(h),
            WaitingQueue::Priority(q) => {
                q.insert((priority, arrival, h));
            }
        }
    }

    /// The next request to admit.
    pub(crate) fn peek(&self) -> Option<Handle> {
        match self {
            WaitingQueue::Fcfs(q) => q.front().copied(),
            WaitingQueue::Priority(q) => q.first().map(|e| e.2),
        }
    }

    /// Removes the next request to admit.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Handle> {
        match self {
            WaitingQueue::Fcfs(q) => q.pop_front(),
            WaitingQueue::Priority(q) => q.pop_first().map(|e| e.2),
        }
    }

    /// Removes `h` wherever it is (an abort of a waiting request). O(n) under fcfs, O(log n)
    /// under priority.
    pub(crate) fn remove(&mut self, h: Handle, priority: i64, arrival: u64) -> bool {
        match self {
            WaitingQueue::Fcfs(q) => match q.iter().position(|x| *x == h) {
                Some(i) => q.remove(i).is_some(),
                None => false,
            },
            WaitingQueue::Priority(q) => q.remove(&(priority, arrival, h)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            WaitingQueue::Fcfs(q) => q.len(),
            WaitingQueue::Priority(q) => q.len(),
        }
    }

    /// The queue in admission order.
    pub(crate) fn iter(&self) -> Iter<'_> {
        match self {
            WaitingQueue::Fcfs(q) => Iter::Fcfs(q.iter()),
            WaitingQueue::Priority(q) => Iter::Priority(q.iter()),
        }
    }
}

/// [`WaitingQueue::iter`]: an enum rather than a boxed iterator, so that walking the queue
/// allocates nothing (the explorer walks it several times per transition).
pub(crate) enum Iter<'a> {
    Fcfs(std::collections::vec_deque::Iter<'a, Handle>),
    Priority(std::collections::btree_set::Iter<'a, (i64, u64, Handle)>),
}

impl Iterator for Iter<'_> {
    type Item = Handle;

    #[inline]
    fn next(&mut self) -> Option<Handle> {
        match self {
            Iter::Fcfs(q) => q.next().copied(),
            Iter::Priority(q) => q.next().map(|e| e.2),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Fcfs(q) => q.size_hint(),
            Iter::Priority(q) => q.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The priority queue answers as an ordered set of `(priority, arrival, handle)`: the same
    /// order, peek, pop and remove, duplicates ignored, and copies (also from the other policy's
    /// queue) equal to the original, under a long mixed sequence.
    #[test]
    fn priority_queue_is_an_ordered_set() {
        let mut q = WaitingQueue::new(Policy::Priority);
        let mut set: BTreeSet<(i64, u64, Handle)> = BTreeSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..5_000 {
            let r = next();
            let e = ((r % 5) as i64 - 2, (r >> 8) % 64, Handle { slot: ((r >> 16) % 8) as u32, generation: 0 });
            match (r >> 32) % 4 {
                0 => {
                    q.push_back(e.2, e.0, e.1);
                    set.insert(e);
                }
                1 => {
                    q.push_front(e.2, e.0, e.1);
                    set.insert(e);
                }
                2 => assert_eq!(q.pop(), set.pop_first().map(|e| e.2)),
                _ => assert_eq!(q.remove(e.2, e.0, e.1), set.remove(&e)),
            }
            assert_eq!(q.peek(), set.first().map(|e| e.2));
            assert_eq!(q.len(), set.len());
            assert!(q.iter().eq(set.iter().map(|e| e.2)));
            let mut copy = WaitingQueue::new(Policy::Fcfs);
            copy.clone_from(&q);
            assert!(copy.iter().eq(q.iter()));
        }
    }
}
