//! An upload's running SHA-256, saved between chunks in the format
//! registry:2 saves it in (Go's `crypto/sha256` `MarshalBinary`, which
//! distribution stores at `_uploads/<id>/hashstates/sha256/<offset>`), so
//! either registry resumes the other's uploads without rereading them:
//!
//! ```text
//! "sha\x03" | h[0..8] as big-endian u32 | the unhashed tail of the last block,
//! zero-padded to 64 bytes | bytes hashed so far as big-endian u64
//! ```
//!
//! The hashing itself is `sha2`'s: its `SerializableState` gives the
//! state (`h` little-endian, then the number of whole blocks, then the
//! buffer's length byte and bytes), which is only reordered here.

use sha2::Sha256;
use sha2::digest::common::hazmat::{SerializableState, SerializedState};

const MAGIC: &[u8; 4] = b"sha\x03";
const BLOCK: usize = 64;
/// The size of a saved state.
pub(crate) const SIZE: usize = MAGIC.len() + 32 + BLOCK + 8;
/// `sha2`'s layout: 32 bytes of state, 8 of block count, then the buffer.
const CORE: usize = 40;

/// Saves `sha`, which has hashed some bytes, in Go's format.
pub(crate) fn encode(sha: &Sha256) -> Vec<u8> {
    let raw = sha.serialize();
    let mut out = Vec::with_capacity(SIZE);
    out.extend_from_slice(MAGIC);
    for word in raw[..32].chunks_exact(4) {
        let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        out.extend_from_slice(&w.to_be_bytes());
    }
    let blocks = u64::from_le_bytes(raw[32..CORE].try_into().unwrap_or_default());
    let pos = usize::from(raw[CORE]);
    let mut tail = [0u8; BLOCK];
    tail[..pos].copy_from_slice(&raw[CORE + 1..CORE + 1 + pos]);
    out.extend_from_slice(&tail);
    let len = blocks * BLOCK as u64 + pos as u64;
    out.extend_from_slice(&len.to_be_bytes());
    out
}

/// Restores a state saved by [`encode`] (or by registry:2), with the number
/// of bytes it has hashed; `None` when `saved` is not such a state.
pub(crate) fn decode(saved: &[u8]) -> Option<(Sha256, u64)> {
    if saved.len() != SIZE || !saved.starts_with(MAGIC) {
        return None;
    }
    let body = &saved[MAGIC.len()..];
    let len = u64::from_be_bytes(body[32 + BLOCK..].try_into().ok()?);
    let pos = usize::try_from(len % BLOCK as u64).ok()?;
    let mut raw = SerializedState::<Sha256>::default();
    for (i, word) in body[..32].chunks_exact(4).enumerate() {
        let w = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        raw[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    raw[32..CORE].copy_from_slice(&(len / BLOCK as u64).to_le_bytes());
    raw[CORE] = u8::try_from(pos).ok()?;
    raw[CORE + 1..CORE + 1 + pos].copy_from_slice(&body[32..32 + pos]);
    let sha = Sha256::deserialize(&raw).ok()?;
    Some((sha, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// Saved after any number of bytes, restored, and continued, the hash
    /// is the one-shot hash.
    #[test]
    fn a_restored_state_continues_the_hash() {
        let all = data(300);
        let whole = Sha256::digest(&all);
        for cut in [0, 1, 55, 63, 64, 65, 127, 128, 200, 300] {
            let mut sha = Sha256::new();
            sha.update(&all[..cut]);
            let saved = encode(&sha);
            assert_eq!(saved.len(), SIZE);
            let (mut back, len) = decode(&saved).unwrap();
            assert_eq!(len, cut as u64);
            back.update(&all[cut..]);
            assert_eq!(back.finalize(), whole, "cut at {cut}");
        }
    }

    /// The layout is Go's: the magic, SHA-256's initial `h` for a fresh
    /// hash, the unhashed tail zero-padded, the length last.
    #[test]
    fn the_layout_is_gos() {
        let fresh = encode(&Sha256::new());
        assert_eq!(&fresh[..4], b"sha\x03");
        assert_eq!(&fresh[4..8], &0x6a09_e667_u32.to_be_bytes());
        assert_eq!(&fresh[32..36], &0x5be0_cd19_u32.to_be_bytes());
        assert!(fresh[36..].iter().all(|&b| b == 0));

        let all = data(70);
        let mut sha = Sha256::new();
        sha.update(&all);
        let saved = encode(&sha);
        assert_eq!(&saved[36..42], &all[64..70]);
        assert!(saved[42..100].iter().all(|&b| b == 0));
        assert_eq!(&saved[100..], &70u64.to_be_bytes());
    }

    #[test]
    fn garbage_is_not_a_state() {
        assert!(decode(b"").is_none());
        assert!(decode(&[0u8; SIZE]).is_none());
        let mut sha224 = encode(&Sha256::new());
        sha224[3] = 2;
        assert!(decode(&sha224).is_none());
        assert!(decode(&encode(&Sha256::new())[..SIZE - 1]).is_none());
    }
}
