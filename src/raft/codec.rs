//! How log entries are stored, and openraft's ids as the store's integrity marks.
//!
//! An entry is its JSON with a checksum as the first field: `{"crc32":"<8 hex>",` followed by
//! the entry's JSON without its opening brace, the CRC-32 taken over exactly those following
//! bytes. sled checksums its own pages, but a flipped byte that reached a value must not be
//! decoded as a different, well-formed entry (a changed term, index or command). The checksum
//! is a JSON field that openraft's `Entry` ignores, so a build before it reads these entries
//! unchanged (a downgrade keeps working), and entries that build wrote (no checksum) are read
//! as before: entries needed no new data version.

use openraft::{LogId, Vote};

use super::{Entry, NodeId};
use crate::store::{LogMark, VoteMark};

const PREFIX: &[u8] = b"{\"crc32\":\"";
/// `PREFIX`, 8 hex digits, `",`.
const HEADER: usize = PREFIX.len() + 10;

pub fn encode_entry(entry: &Entry) -> serde_json::Result<Vec<u8>> {
    let json = serde_json::to_vec(entry)?;
    // An entry always serialises as a non-empty object, so `rest` starts with a field.
    let rest = &json[1..];
    let mut out = Vec::with_capacity(HEADER + rest.len());
    out.extend_from_slice(PREFIX);
    out.extend_from_slice(format!("{:08x}", crc32fast::hash(rest)).as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(rest);
    Ok(out)
}

/// Decodes the entry stored under `index`: its checksum (when it has one) must match, it must
/// parse, and it must be the entry of that index.
pub fn decode_entry(index: u64, bytes: &[u8]) -> Result<Entry, String> {
    if bytes.starts_with(PREFIX) && bytes.len() > HEADER && &bytes[HEADER - 2..HEADER] == b"\"," {
        let stored = std::str::from_utf8(&bytes[PREFIX.len()..HEADER - 2])
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        let actual = crc32fast::hash(&bytes[HEADER..]);
        if stored != Some(actual) {
            return Err(format!("log entry {index} fails its checksum"));
        }
    }
    let entry: Entry =
        serde_json::from_slice(bytes).map_err(|e| format!("log entry {index} unreadable: {e}"))?;
    if entry.log_id.index != index {
        return Err(format!(
            "log entry stored at index {index} is entry {}",
            entry.log_id.index
        ));
    }
    Ok(entry)
}

pub fn log_mark(l: &LogId<NodeId>) -> LogMark {
    LogMark {
        term: l.leader_id.term,
        node: l.leader_id.node_id,
        index: l.index,
    }
}

pub fn vote_mark(v: &Vote<NodeId>) -> VoteMark {
    VoteMark {
        term: v.leader_id.term,
        node: v.leader_id.node_id,
        committed: v.committed,
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::state::{Cmd, Proposal};

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), index),
            payload: EntryPayload::Normal(Proposal {
                at_ms: 1_700_000_000_000,
                cmd: Cmd::AckFailover { group: "g".into() },
            }),
        }
    }

    /// Round trip; the previous build's decoding (plain `serde_json`) reads the new encoding,
    /// and this build reads the previous one's.
    #[test]
    fn round_trip_both_ways_compatible() {
        let e = entry(7);
        let bytes = encode_entry(&e).unwrap();
        assert!(bytes.starts_with(b"{\"crc32\":\""));
        let back = decode_entry(7, &bytes).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&e).unwrap()
        );
        let old_reader: Entry = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(old_reader.log_id, e.log_id);
        let old_bytes = serde_json::to_vec(&e).unwrap();
        assert_eq!(decode_entry(7, &old_bytes).unwrap().log_id, e.log_id);
    }

    /// Any byte changed after the header (a digit of the term, of the group name) is caught,
    /// as is an entry stored under another index.
    #[test]
    fn flips_and_misplaced_entries_are_refused() {
        let bytes = encode_entry(&entry(7)).unwrap();
        for at in HEADER..bytes.len() {
            let mut b = bytes.clone();
            b[at] ^= 0x01;
            let err = decode_entry(7, &b).unwrap_err();
            assert!(err.contains("checksum"), "{at}: {err}");
        }
        let err = decode_entry(8, &bytes).unwrap_err();
        assert!(err.contains("is entry 7"), "{err}");
    }
}
