// SPDX-License-Identifier: MPL-2.0
//! Shared buffers the peer holds: an id per buffer sent, the memory kept alive until the
//! peer releases that id. Pure bookkeeping, generic over what keeps the memory alive.

use std::collections::HashMap;

/// A release named a buffer that is not outstanding (never sent, or released twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the peer released shared buffer {0}, which it does not hold")]
pub struct UnknownBuffer(pub u64);

/// Buffers sent and not yet released, by id.
#[derive(Debug)]
pub struct Outstanding<T> {
    next_id: u64,
    held: HashMap<u64, T>,
}

impl<T> Default for Outstanding<T> {
    fn default() -> Self {
        Self {
            next_id: 0,
            held: HashMap::new(),
        }
    }
}

impl<T> Outstanding<T> {
    /// The id the next [`Self::insert`] returns (so a frame can be encoded first and the
    /// buffer recorded only once it was written).
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Records `memory` as held by the peer; returns its id. Ids never repeat on one
    /// connection (a u64 counter), so a late duplicate release cannot free a newer buffer.
    pub fn insert(&mut self, memory: T) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.held.insert(id, memory);
        id
    }

    /// The peer is done with `id`: hands its memory back.
    pub fn release(&mut self, id: u64) -> Result<T, UnknownBuffer> {
        self.held.remove(&id).ok_or(UnknownBuffer(id))
    }

    /// Buffers the peer holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.held.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Everything still held (the connection is gone: nobody will release it).
    #[cfg(test)]
    pub fn drain(&mut self) -> Vec<T> {
        self.held.drain().map(|(_, memory)| memory).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn release_returns_the_memory_once() {
        let mut held = Outstanding::default();
        let a = held.insert("a");
        let b = held.insert("b");
        assert_ne!(a, b);
        assert_eq!(held.release(b), Ok("b"));
        assert_eq!(held.release(b), Err(UnknownBuffer(b)));
        assert_eq!(held.release(99), Err(UnknownBuffer(99)));
        assert_eq!(held.len(), 1);
        assert_eq!(held.drain(), vec!["a"]);
        assert!(held.is_empty());
    }

    proptest! {
        /// Any mix of sends and (possibly bogus) releases: every id is released at most
        /// once, bogus ids are refused, and what is held is exactly sent minus released.
        #[test]
        fn bookkeeping_matches_a_model(ops in proptest::collection::vec(
            prop_oneof![Just(None), (0u64..64).prop_map(Some)], 0..200))
        {
            let mut held = Outstanding::default();
            let mut model: HashSet<u64> = HashSet::new();
            let mut ever: HashSet<u64> = HashSet::new();
            for op in ops {
                match op {
                    None => {
                        let expected = held.next_id();
                        let id = held.insert(expected);
                        prop_assert_eq!(id, expected);
                        prop_assert!(ever.insert(id), "id {} reused", id);
                        model.insert(id);
                    }
                    Some(id) => {
                        let result = held.release(id);
                        if model.remove(&id) {
                            prop_assert_eq!(result, Ok(id));
                        } else {
                            prop_assert_eq!(result, Err(UnknownBuffer(id)));
                        }
                    }
                }
                prop_assert_eq!(held.len(), model.len());
            }
            let mut rest = held.drain();
            rest.sort_unstable();
            let mut expected: Vec<u64> = model.into_iter().collect();
            expected.sort_unstable();
            prop_assert_eq!(rest, expected);
        }
    }
}
