//! A fast hasher for the store's in-memory maps (the queue, the attempts in flight, a group's
//! pending writes), whose keys are ids io generates (ULIDs, channel codes) or short keys: the
//! multiply-rotate scheme of rustc's FxHash. std's SipHash resists hash flooding by untrusted
//! keys, which these maps do not take, and cost several per cent of dispatch.

use std::hash::{BuildHasherDefault, Hasher};

/// The hasher.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ (rest.len() as u64) << 56);
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_u128(&mut self, value: u128) {
        self.add(value as u64);
        self.add((value >> 64) as u64);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with the fast hasher.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn hash(value: impl Hash) -> u64 {
        let mut hasher = FastHasher::default();
        value.hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn different_keys_hash_apart_and_equal_keys_alike() {
        let a = io_core::MessageId::from_parts(1_700_000_000_000, 1);
        let b = io_core::MessageId::from_parts(1_700_000_000_000, 2);
        assert_eq!(hash(a), hash(a));
        assert_ne!(hash(a), hash(b));
        assert_ne!(hash(b"abc".as_slice()), hash(b"abd".as_slice()));
        assert_ne!(hash(b"".as_slice()), hash(b"\0".as_slice()));
        let mut map: FastMap<io_core::MessageId, u32> = FastMap::default();
        map.insert(a, 1);
        map.insert(b, 2);
        assert_eq!((map[&a], map[&b]), (1, 2));
    }
}
