//! The waiting queue under both policies.

use std::collections::{BTreeSet, VecDeque};

use super::config::Policy;
use super::request::Handle;

/// Requests waiting to be admitted, in admission order.
///
/// - fcfs: a deque; new requests join the back, preempted ones the front.
/// - priority: ordered by `(priority, arrival)`, lower first; preempted requests simply rejoin
///   at their place (a priority queue has no front to prepend to, as in vLLM). Arrival numbers
///   are unique, so the id tie-break of `SPEC.md` §6 is never needed.
#[derive(Debug)]
pub(crate) enum WaitingQueue {
    Fcfs(VecDeque<Handle>),
    Priority(BTreeSet<(i64, u64, Handle)>),
}

// By hand for `clone_from`, which reuses the fcfs deque (the explorer's copies of a state).
impl Clone for WaitingQueue {
    fn clone(&self) -> WaitingQueue {
        match self {
            WaitingQueue::Fcfs(q) => WaitingQueue::Fcfs(q.clone()),
            WaitingQueue::Priority(q) => WaitingQueue::Priority(q.clone()),
        }
    }

    fn clone_from(&mut self, source: &WaitingQueue) {
        match (self, source) {
            (WaitingQueue::Fcfs(d), WaitingQueue::Fcfs(s)) => d.clone_from(s),
            (WaitingQueue::Priority(d), WaitingQueue::Priority(s)) => d.clone_from(s),
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

    /// Removes `h` wherever it is (an abort of a waiting request). O(n) under fcfs.
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
