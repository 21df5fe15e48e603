//! How the state machine's snapshot is stored: framed bytes, not JSON around JSON.
//!
//! Data version 1 stored `{"meta": ..., "data": [123, 34, ...]}`: the state's JSON as a JSON
//! array of its bytes, about 3.5 bytes on disk per byte of state (a 575 KB state of 100 groups
//! took 2 MB). Data version 2 stores
//!
//! ```text
//! MHASNAP2 | crc32 (4 bytes, big-endian, over everything after it)
//!          | meta length (4 bytes, big-endian) | meta (JSON) | data (the state's JSON, as is)
//! ```
//!
//! so the stored snapshot is the size of the state plus its meta, and a flipped byte in it is
//! refused at start instead of loaded as another, well-formed state. A version-1 snapshot
//! (JSON, starts with `{`) is still read: a store written by the build before is loaded as it
//! is and written in this format at the next snapshot.

use openraft::{BasicNode, SnapshotMeta};
use serde::{Deserialize, Serialize};

use super::NodeId;

const MAGIC: &[u8; 8] = b"MHASNAP2";
/// Magic, checksum, meta length.
const HEADER: usize = MAGIC.len() + 4 + 4;

/// A snapshot as the store keeps it: openraft's meta and the state's bytes.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredSnapshot {
    pub meta: SnapshotMeta<NodeId, BasicNode>,
    pub data: Vec<u8>,
}

pub(super) fn encode(snap: &StoredSnapshot) -> serde_json::Result<Vec<u8>> {
    let meta = serde_json::to_vec(&snap.meta)?;
    let mut out = Vec::with_capacity(HEADER + meta.len() + snap.data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0; 4]);
    // A meta is a few hundred bytes: far below u32::MAX.
    out.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&snap.data);
    let crc = crc32fast::hash(&out[MAGIC.len() + 4..]);
    out[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Decodes a stored snapshot, framed (checksum checked) or in version 1's JSON.
pub(super) fn decode(bytes: &[u8]) -> Result<StoredSnapshot, String> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        if !bytes.starts_with(b"{") {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(8)]).into_owned();
            return Err(format!(
                "snapshot of unknown format (starts {head:?}, neither MHASNAP2 nor version 1 JSON)"
            ));
        }
        return serde_json::from_slice(bytes)
            .map_err(|e| format!("snapshot unreadable (version 1 JSON): {e}"));
    };
    if rest.len() < 8 {
        return Err(format!("snapshot cut short: {} bytes", bytes.len()));
    }
    let stored = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
    let body = &rest[4..];
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(format!(
            "snapshot fails its checksum (stored {stored:08x}, computed {actual:08x})"
        ));
    }
    let meta_len = u32::from_be_bytes(body[..4].try_into().expect("4 bytes")) as usize;
    let Some(meta) = body[4..].get(..meta_len) else {
        return Err(format!(
            "snapshot meta of {meta_len} bytes overruns the {} stored",
            body.len() - 4
        ));
    };
    let meta =
        serde_json::from_slice(meta).map_err(|e| format!("snapshot meta unreadable: {e}"))?;
    Ok(StoredSnapshot {
        meta,
        data: body[4 + meta_len..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId, Membership, StoredMembership};
    use std::collections::BTreeSet;

    fn sample() -> StoredSnapshot {
        let log_id = LogId::new(CommittedLeaderId::new(7, 2), 4242);
        let members = Membership::new(vec![BTreeSet::from([1, 2, 3])], None);
        StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: Some(log_id),
                last_membership: StoredMembership::new(Some(log_id), members),
                snapshot_id: "7-4242-3".into(),
            },
            data: br#"{"groups":{"app1":{"master":"db1"}},"name":"prod"}"#.to_vec(),
        }
    }

    #[test]
    fn framed_round_trip_is_the_state_plus_its_meta() {
        let s = sample();
        let bytes = encode(&s).unwrap();
        let meta_len = serde_json::to_vec(&s.meta).unwrap().len();
        assert_eq!(bytes.len(), HEADER + meta_len + s.data.len());
        let back = decode(&bytes).unwrap();
        assert_eq!(back.meta, s.meta);
        assert_eq!(back.data, s.data);
    }

    #[test]
    fn version_one_json_is_still_read() {
        let s = sample();
        let v1 = serde_json::to_vec(&s).unwrap();
        assert!(
            v1.len() > 3 * s.data.len(),
            "version 1 spends ~3.5 bytes per byte"
        );
        let back = decode(&v1).unwrap();
        assert_eq!(back.meta, s.meta);
        assert_eq!(back.data, s.data);
    }

    #[test]
    fn any_flipped_byte_or_cut_is_refused() {
        let bytes = encode(&sample()).unwrap();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
        for len in MAGIC.len()..bytes.len() {
            assert!(
                decode(&bytes[..len]).is_err(),
                "cut at {len} went unnoticed"
            );
        }
    }
}
