//! The KV block pool: a fixed set of blocks, handed out to requests and given back.

use std::fmt;

/// One KV cache block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub u32);

/// A pool of `num_blocks` KV blocks. Free blocks are kept on a stack; a request holds its
/// blocks in a `Vec` that the pool extends and empties. The pool never hands out a block it
/// does not have: allocation is all or nothing.
#[derive(Clone)]
pub struct BlockPool {
    free: Vec<BlockId>,
    total: usize,
}

impl BlockPool {
    /// A pool of `total` free blocks (at most `u32::MAX`).
    pub fn new(total: usize) -> BlockPool {
        let total = total.min(u32::MAX as usize);
        // Highest id at the bottom of the stack, so blocks are handed out from 0 upwards.
        let free = (0..total as u32).rev().map(BlockId).collect();
        BlockPool { free, total }
    }

    /// How many blocks exist.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How many blocks are free.
    pub fn free(&self) -> usize {
        self.free.len()
    }

    /// How many blocks are held by requests.
    pub fn used(&self) -> usize {
        self.total - self.free.len()
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
        if missing > self.free.len() {
            return false;
        }
        let at = self.free.len() - missing;
        held.extend(self.free.drain(at..).rev());
        true
    }

    /// Gives every block of `held` back to the pool.
    #[inline]
    pub fn release(&mut self, held: &mut Vec<BlockId>) {
        self.free.extend(held.drain(..).rev());
    }

    /// The free blocks, top of the stack last.
    pub fn free_blocks(&self) -> &[BlockId] {
        &self.free
    }
}

impl fmt::Debug for BlockPool {
    /// One line: `BlockPool { 7/10 used, free: [7, 8, 9] }` (the free list is elided past 16).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockPool {{ {}/{} used, free: [", self.used(), self.total)?;
        for (i, b) in self.free.iter().rev().take(16).enumerate() {
            write!(f, "{}{}", if i > 0 { ", " } else { "" }, b.0)?;
        }
        if self.free.len() > 16 {
            write!(f, ", … {} more", self.free.len() - 16)?;
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
}
