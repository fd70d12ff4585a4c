//! The KV block pool: a fixed set of blocks, handed out to requests and given back.

use std::fmt;

/// One KV cache block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub u32);

/// A pool of `total` KV blocks, handed out from a stack of free blocks; a request holds its
/// blocks in a `Vec` that the pool extends and empties. The pool never hands out a block it
/// does not have: allocation is all or nothing.
///
/// The stack is virtual below its top: blocks never handed out (ids `issued()..total`) take
/// no memory and come out in ascending order, beneath the given-back blocks. So the pool's
/// memory grows with the blocks in use, not with `total`, and blocks come out in the order of
/// a stack filled with `total - 1 … 0`.
pub struct BlockPool {
    /// Blocks given back, top of the stack last.
    recycled: Vec<BlockId>,
    /// The lowest id never handed out.
    fresh: u32,
    total: u32,
}

// By hand for `clone_from`, which reuses the stack (the explorer's copies of a state).
impl Clone for BlockPool {
    fn clone(&self) -> BlockPool {
        BlockPool { recycled: self.recycled.clone(), fresh: self.fresh, total: self.total }
    }

    fn clone_from(&mut self, source: &BlockPool) {
        let BlockPool { recycled, fresh, total } = source;
        self.recycled.clone_from(recycled);
        self.fresh = *fresh;
        self.total = *total;
    }
}

impl BlockPool {
    /// A pool of `total` free blocks.
    pub fn new(total: u32) -> BlockPool {
        BlockPool { recycled: Vec::new(), fresh: 0, total }
    }

    /// How many blocks exist.
    pub fn total(&self) -> usize {
        self.total as usize
    }

    /// How many blocks are free.
    pub fn free(&self) -> usize {
        self.recycled.len() + (self.total - self.fresh) as usize
    }

    /// How many blocks are held by requests.
    pub fn used(&self) -> usize {
        self.total().saturating_sub(self.free())
    }

    /// How many blocks were ever handed out: ids `0..issued()`. The others are free.
    pub fn issued(&self) -> usize {
        self.fresh as usize
    }

    /// Grows `held` to `needed` blocks. Returns `false`, changing nothing, when the pool has too
    /// few free blocks; a request that already holds enough is left as it is.
    #[inline]
    pub fn grow_to(&mut self, held: &mut Vec<BlockId>, needed: usize) -> bool {
        let missing = needed.saturating_sub(held.len());
        if missing == 0 {
            // The common case: a decoding request needs a new block once per `block_size` tokens.
            return true;
        }
        if missing > self.free() {
            // Under KV pressure the next admission fails in many steps: no call for that.
            return false;
        }
        self.take(held, missing)
    }

    /// Moves `missing` blocks to `held`, or none. Out of line, so that the scheduler's loop
    /// over running requests, which inlines the common case above, keeps its registers.
    #[inline(never)]
    fn take(&mut self, held: &mut Vec<BlockId>, missing: usize) -> bool {
        if missing > self.free() {
            return false; // checked by the caller already; kept so that `take` stands alone
        }
        // The top of the stack first: given-back blocks, then never-used ones in ascending order.
        let from_recycled = missing.min(self.recycled.len());
        let at = self.recycled.len() - from_recycled;
        held.extend(self.recycled.drain(at..).rev());
        // At most `total - fresh` (checked above), so it fits a u32 and the sum cannot overflow.
        let from_fresh = (missing - from_recycled) as u32;
        if from_fresh > 0 {
            held.extend((self.fresh..self.fresh + from_fresh).map(BlockId));
            self.fresh += from_fresh;
        }
        true
    }

    /// Gives every block of `held` back to the pool.
    #[inline]
    pub fn release(&mut self, held: &mut Vec<BlockId>) {
        self.recycled.extend(held.drain(..).rev());
    }

    /// The free blocks, top of the stack last (the never-used ones first, highest id first).
    pub fn free_blocks(&self) -> impl DoubleEndedIterator<Item = BlockId> + '_ {
        (self.fresh..self.total).rev().map(BlockId).chain(self.recycled.iter().copied())
    }

    /// The blocks given back and not handed out again, top of the stack last.
    pub(crate) fn recycled(&self) -> &[BlockId] {
        &self.recycled
    }
}

impl fmt::Debug for BlockPool {
    /// One line: `BlockPool { 7/10 used, free: [7, 8, 9] }` (the free list is elided past 16).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockPool {{ {}/{} used, free: [", self.used(), self.total)?;
        for (i, b) in self.free_blocks().rev().take(16).enumerate() {
            write!(f, "{}{}", if i > 0 { ", " } else { "" }, b.0)?;
        }
        if self.free() > 16 {
            write!(f, ", … {} more", self.free() - 16)?;
        }
        write!(f, "] }}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_all_or_nothing_and_release_returns_everything() {
        let mut pool = BlockPool::new(4);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        assert!(pool.grow_to(&mut a, 3));
        assert_eq!(a, [BlockId(0), BlockId(1), BlockId(2)]);
        assert!(!pool.grow_to(&mut b, 2), "only one block is free");
        assert!(b.is_empty());
        assert_eq!(pool.free(), 1);
        assert!(pool.grow_to(&mut a, 2), "already holds enough");
        assert_eq!(a.len(), 3);
        pool.release(&mut a);
        assert!(a.is_empty());
        assert_eq!(pool.free(), 4);
        assert!(pool.grow_to(&mut b, 4));
        assert_eq!(pool.used(), 4);
    }

    #[test]
    fn debug_is_one_line_with_the_free_list_elided_past_16() {
        let mut pool = BlockPool::new(3);
        let mut held = Vec::new();
        assert!(pool.grow_to(&mut held, 1));
        assert_eq!(format!("{pool:?}"), "BlockPool { 1/3 used, free: [1, 2] }");
        assert_eq!(format!("{:?}", BlockPool::new(16)).matches(", ").count(), 16);
        assert!(!format!("{:?}", BlockPool::new(16)).contains('…'));
        let big = format!("{:?}", BlockPool::new(20));
        assert!(big.ends_with("13, 14, 15, … 4 more] }"), "{big}");
    }

    #[test]
    fn blocks_come_out_as_from_a_full_stack_and_memory_follows_use() {
        // The order of a stack filled with `total - 1 … 0`: never-used blocks in ascending
        // order, given-back blocks first, the last given back on top.
        let mut pool = BlockPool::new(u32::MAX);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        assert!(pool.grow_to(&mut a, 3));
        assert!(pool.grow_to(&mut b, 2));
        assert_eq!(b, [BlockId(3), BlockId(4)]);
        pool.release(&mut a);
        assert!(pool.grow_to(&mut a, 5), "three given back, then two never used");
        assert_eq!(a, [BlockId(0), BlockId(1), BlockId(2), BlockId(5), BlockId(6)]);
        assert_eq!((pool.issued(), pool.used(), pool.free()), (7, 7, u32::MAX as usize - 7));
        pool.release(&mut b);
        assert_eq!(pool.free_blocks().next_back(), Some(BlockId(3)), "the first of b on top");
        assert_eq!(pool.recycled().len(), 2, "only given-back blocks take memory");
        assert!(!pool.grow_to(&mut b, u32::MAX as usize), "all or nothing");
        assert!(b.is_empty());
        let mut small = BlockPool::new(3);
        let mut all = Vec::new();
        assert!(small.grow_to(&mut all, 3));
        assert_eq!((small.free(), small.free_blocks().count()), (0, 0));
        assert!(!small.grow_to(&mut b, 1));
    }
}
