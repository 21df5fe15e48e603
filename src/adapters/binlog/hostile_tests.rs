//! Hostile input (issue #13): a binlog or relay-log file the manager reads from a DB host may be
//! corrupt, cut or forged. Property tests over arbitrary bytes and mutations of the real
//! fixtures (MariaDB's captured files, the MySQL 8 file with a compressed transaction, and that
//! file with any bytes compressed into its payload): every reader — the framing, both body
//! readers, the master log built from relay logs, a salvaged binlog or an assembled file, and
//! assembly — answers or fails cleanly; none panics, and no length field makes it allocate
//! more than the data it was given.

use std::sync::OnceLock;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use super::fixtures::{self, Mysql8};
use super::{assemble, native, Decoder, Events, MasterLog, HEADER_LEN, MAGIC};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The fixtures by name: MariaDB's six files and the two MySQL 8 variants.
fn seeds() -> &'static [(String, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut v: Vec<(String, Vec<u8>)> = fixtures::MARIADB
            .iter()
            .map(|n| (n.to_string(), fixtures::file(n)))
            .collect();
        v.push(("binlog.000001".into(), Mysql8::anonymous().bytes));
        v.push(("binlog.000002".into(), Mysql8::with_gtid().bytes));
        v
    })
}

/// Where each event of `data` starts and how long it is (for the field edits).
fn events_of(data: &[u8]) -> Vec<(usize, usize)> {
    Events::of_file("seed", data)
        .map(|evs| {
            evs.filter_map(Result::ok)
                .map(|e| (e.offset as usize, e.bytes.len()))
                .collect()
        })
        .unwrap_or_default()
}

/// Values a forged length, type or position field would carry.
fn edge() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => prop::sample::select(vec![
            0,
            1,
            3,
            4,
            18,
            19,
            20,
            23,
            0x7f,
            0xff,
            0x100,
            0xffff,
            0x1_0000,
            0x7fff_ffff,
            0xffff_fff0,
            u32::MAX,
        ]),
        1 => any::<u32>(),
    ]
}

/// One edit of a file: bytes anywhere, or a field of one event (header fields at their
/// offsets: type 4, size 9, end position 13, flags 17; body bytes from 19 on).
#[derive(Clone, Debug)]
enum Edit {
    Flip(Index, u8),
    Truncate(Index),
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    /// Overwrite `width` bytes at `at` in event `event` with `value` (little-endian).
    Field {
        event: Index,
        at: usize,
        width: usize,
        value: u32,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        2 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), 1usize..32).prop_map(|(i, n)| Edit::Delete(i, n)),
        1 => (any::<Index>(), vec(any::<u8>(), 1..24)).prop_map(|(i, b)| Edit::Insert(i, b)),
        4 => (
            any::<Index>(),
            prop_oneof![
                3 => prop::sample::select(vec![4usize, 9, 13, 17]),
                2 => HEADER_LEN..HEADER_LEN + 64,
            ],
            prop::sample::select(vec![1usize, 2, 4]),
            edge(),
        )
            .prop_map(|(event, at, width, value)| Edit::Field {
                event,
                at,
                width,
                value,
            }),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let events = events_of(seed);
    let mut b = seed.to_vec();
    for e in edits {
        let pos = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        match e {
            Edit::Flip(i, bit) if !b.is_empty() => {
                let k = pos(i, b.len());
                b[k] ^= 1 << bit;
            }
            Edit::Truncate(i) => b.truncate(pos(i, b.len() + 1)),
            Edit::Delete(i, n) if !b.is_empty() => {
                let k = pos(i, b.len());
                b.drain(k..(k + n).min(b.len()));
            }
            Edit::Insert(i, ins) => {
                let k = pos(i, b.len() + 1);
                b.splice(k..k, ins.iter().copied());
            }
            Edit::Field {
                event,
                at,
                width,
                value,
            } if !events.is_empty() => {
                // Offsets of the seed's events (earlier edits may have moved them: fine).
                let (start, len) = events[event.index(events.len())];
                let at = start + at.min(&len.saturating_sub(*width));
                for (k, byte) in value.to_le_bytes().iter().take(*width).enumerate() {
                    if let Some(x) = b.get_mut(at + k) {
                        *x = *byte;
                    }
                }
            }
            _ => {}
        }
    }
    b
}

/// Runs every reader over one file, as recovery does. Only a panic fails.
fn read_everything(name: &str, data: &[u8]) {
    // Framing and both body readers.
    if let Ok(evs) = Events::of_file(name, data) {
        let mut dec = Decoder::new(name);
        for ev in evs {
            let Ok(ev) = ev else { break };
            let _ = dec.decode(&ev);
            let _ = native::decode(&ev, dec.checksum());
        }
    }
    // A range read from an offset (a salvage from the latest replica's position).
    for ev in Events::new(name, data.get(4..).unwrap_or_default(), 4).take(64) {
        if ev.is_err() {
            break;
        }
    }
    // The master log, each way recovery builds one.
    if let Ok(log) = MasterLog::from_relay_logs(&[(name.to_string(), data.to_vec())]) {
        use_log(&log);
    }
    if let Ok(log) = MasterLog::from_assembled(name, data) {
        use_log(&log);
    }
    let mut log = MasterLog::default();
    let rest = data.get(4..).unwrap_or_default();
    if log.push_binlog(name, data, 4, rest).is_ok() {
        use_log(&log);
    }
}

/// What recovery asks of a master log: where it reaches, what follows a position, a file cut
/// from it (which reads back).
fn use_log(log: &MasterLog) {
    let _ = log.end();
    if let Some(start) = log.start() {
        let _ = log.covers(&start);
        let _ = log.after(&start);
    }
    for e in log.events().iter().take(8) {
        let _ = log.after(&e.coord());
    }
    let fde = log.fde().unwrap_or_default();
    let a = assemble(fde, &[log.events()], |_| false);
    let _ = MasterLog::from_assembled("assembled", &a.bytes);
}

/// Found while writing these properties (reading the payload's framing): an event inside a
/// Transaction_payload claiming a size of 4 GiB made the reader allocate (and zero) that much
/// before reading a byte of its body; now the body is read as far as the data goes and the
/// event is a clean error.
#[test]
fn payload_event_size_does_not_allocate() {
    let mut inner = Mysql8::transaction();
    inner[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
    let m = Mysql8::with_inner(inner);
    let ev = Events::of_file("binlog.000002", &m.bytes)
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.kind == super::kind::TRANSACTION_PAYLOAD)
        .unwrap();
    let mut dec = Decoder::new("binlog.000002");
    let fde = Events::of_file("binlog.000002", &m.bytes)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    dec.decode(&fde).unwrap();
    let err = dec.decode(&ev).unwrap_err().to_string();
    assert!(err.contains("payload event 0"), "{err}");
}

/// Found by `mutated_fixtures`: mysql_common's reader of a Transaction_payload event's header
/// panics on a compression type it does not know, on a field type above 255 and on a field
/// longer than the event; the header is now checked first and each is a clean error.
#[test]
fn payload_header_fields_are_checked_before_mysql_common() {
    let cases: [(&[u8], &str); 3] = [
        (&[2, 1, 7], "unknown compression type 7"),
        (&[0xfc, 0x2c, 0x01], "unknown field type 300"),
        (&[9, 0xfa], "a field of 250 bytes is cut short"),
    ];
    for (header, why) in cases {
        let mut m = Mysql8::with_gtid();
        let body = m.payload.start + HEADER_LEN;
        m.bytes[body..body + header.len()].copy_from_slice(header);
        let mut dec = Decoder::new("binlog.000002");
        let mut err = None;
        for ev in Events::of_file("binlog.000002", &m.bytes).unwrap() {
            if let Err(e) = dec.decode(&ev.unwrap()) {
                err = Some(e.to_string());
            }
        }
        let err = err.expect("the payload event is refused");
        assert!(err.contains(why), "{err}");
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes, with and without the magic number.
    #[test]
    fn arbitrary_bytes(magic in any::<bool>(), bytes in vec(any::<u8>(), 0..512)) {
        let data = if magic { [&MAGIC[..], &bytes].concat() } else { bytes };
        read_everything("mysql-bin.000001", &data);
    }

    /// The real files with bytes flipped, cut, deleted or inserted, and header and body fields
    /// (sizes, types, positions, flags, post-header lengths) set to edge values.
    #[test]
    fn mutated_fixtures(seed in any::<Index>(), edits in vec(edit(), 1..6)) {
        let (name, data) = &seeds()[seed.index(seeds().len())];
        read_everything(name, &apply(data, &edits));
    }

    /// A replica's four relay logs with one of them mutated: the master log follows rotates
    /// and format descriptions across files.
    #[test]
    fn mutated_relay_log_set(which in 0usize..4, edits in vec(edit(), 1..6)) {
        let files: Vec<(String, Vec<u8>)> = (1..=4)
            .map(|i| {
                let n = format!("relay-bin.00000{i}");
                let d = fixtures::file(&n);
                let d = if i - 1 == which { apply(&d, &edits) } else { d };
                (n, d)
            })
            .collect();
        if let Ok(log) = MasterLog::from_relay_logs(&files) {
            use_log(&log);
        }
    }

    /// MySQL 8's Transaction_payload with any events compressed into it: the transaction with
    /// its sizes, types and bodies mutated, or any bytes.
    #[test]
    fn mutated_payload(
        raw in any::<bool>(),
        edits in vec(edit(), 1..6),
        bytes in vec(any::<u8>(), 0..256),
    ) {
        let inner = if raw {
            bytes
        } else {
            // The inner events framed as a file so the field edits find them.
            let file = [&MAGIC[..], &Mysql8::transaction()].concat();
            apply(&file, &edits).get(4..).unwrap_or_default().to_vec()
        };
        let m = Mysql8::with_inner(inner);
        read_everything("binlog.000002", &m.bytes);
    }
}
