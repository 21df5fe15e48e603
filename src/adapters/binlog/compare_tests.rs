//! Both readers, ours (`native`) and mysql_common's (`common`), on the same fixtures: where
//! both read an event they agree on its header, its raw bytes and what recovery reads from its
//! body; the tests also pin down what only one of them reads, which is why recovery's
//! [`Decoder`] takes each event from the reader it does.

use std::collections::BTreeSet;

use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::BinlogFile;

use super::fixtures::{self, file, Mysql8};
use super::mysql8_fixture;
use super::{
    assemble, kind, native, Common, Decoder, Event, Events, Flavour, Gtid, MasterEvent, MasterLog,
    Reader, HEADER_LEN,
};
use crate::model::BinlogCoord;

/// Every fixture file: MariaDB 10.11's binlogs and relay logs, and the MySQL 8.0.32 file with
/// a compressed transaction the tests build, opened by an anonymous GTID event or by a GTID.
fn all() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fixtures::MARIADB
        .iter()
        .map(|n| (n.to_string(), file(n)))
        .collect();
    out.push(("mysql8 anonymous GTID".into(), Mysql8::anonymous().bytes));
    out.push(("mysql8 with GTID".into(), Mysql8::with_gtid().bytes));
    out
}

/// What one file's events are, as both readers see them.
#[derive(Default)]
struct Seen {
    /// Event types read by both readers.
    both: BTreeSet<u8>,
    /// Event types only ours reads (unknown to mysql_common).
    native_only: BTreeSet<u8>,
    /// Inner events mysql_common found in Transaction_payload events.
    inner: Vec<u8>,
}

fn compare(name: &str, data: &[u8]) -> Seen {
    let mut seen = Seen::default();
    let mut common = Common::default();
    let mut checksum = false;
    for ev in Events::of_file(name, data).unwrap() {
        let ev = ev.unwrap();
        let ours = native::decode(&ev, checksum);
        if let Some(c) = ours.checksum {
            checksum = c;
        }
        let at = format!("{name} at {}", ev.offset);
        let Some(theirs) = common.decode(name, &ev).unwrap() else {
            seen.native_only.insert(ev.kind);
            continue;
        };
        seen.both.insert(ev.kind);
        // The header as mysql_common reads it, and the event written back by its writer
        // (which recomputes the CRC32): the same bytes.
        let raw = common.read(name, &ev).unwrap();
        let h = raw.header();
        assert_eq!(h.event_type_raw(), ev.kind, "{at}");
        assert_eq!(h.server_id(), ev.server_id, "{at}");
        assert_eq!(h.log_pos() as u64, ev.end_log_pos, "{at}");
        assert_eq!(h.event_size() as usize, ev.bytes.len(), "{at}");
        assert_eq!(h.flags_raw(), ev.flags, "{at}");
        let mut back = Vec::new();
        raw.write(BinlogVersion::Version4, &mut back).unwrap();
        assert_eq!(back, ev.bytes, "{at}: raw bytes");
        // The body: what recovery reads.
        assert_eq!(theirs.checksum, ours.checksum, "{at}: checksum");
        assert_eq!(theirs.query, ours.query, "{at}: query");
        assert_eq!(theirs.rotate, ours.rotate, "{at}: rotate");
        assert_eq!(theirs.gtid, ours.gtid, "{at}: gtid");
        if ev.kind == kind::TRANSACTION_PAYLOAD {
            assert!(ours.inner.is_empty(), "ours cannot open a payload");
            seen.inner.extend(theirs.inner.iter().map(|i| i.kind));
        }
    }
    seen
}

#[test]
fn both_readers_agree_on_every_fixture() {
    let mariadb_own: BTreeSet<u8> = [
        kind::MARIADB_ANNOTATE_ROWS,
        kind::MARIADB_BINLOG_CHECKPOINT,
        kind::MARIADB_GTID,
        kind::MARIADB_GTID_LIST,
    ]
    .into();
    for (name, data) in all() {
        let seen = compare(&name, &data);
        assert!(seen.both.contains(&kind::FORMAT_DESCRIPTION), "{name}");
        if name.starts_with("mysql8") {
            assert!(
                seen.native_only.is_empty(),
                "{name}: {:?}",
                seen.native_only
            );
            assert_eq!(
                seen.inner,
                vec![kind::QUERY, 19, 30, kind::XID],
                "{name}: BEGIN, table map, write rows, XID inside the payload"
            );
        } else {
            // mysql_common reads every event of MariaDB's files but MariaDB's own types.
            assert!(seen.native_only.is_subset(&mariadb_own), "{name}");
            assert!(seen.inner.is_empty());
        }
    }
    // Over all MariaDB files: the shared events were read by both (FDE, query, rotate, XID,
    // table map, rows), MariaDB's GTID only by ours.
    let mut both = BTreeSet::new();
    let mut only = BTreeSet::new();
    for n in fixtures::MARIADB {
        let s = compare(n, &file(n));
        both.extend(s.both);
        only.extend(s.native_only);
    }
    assert_eq!(
        both,
        [
            kind::QUERY,
            kind::ROTATE,
            kind::FORMAT_DESCRIPTION,
            kind::XID,
            19,
            23
        ]
        .into()
    );
    assert_eq!(only, mariadb_own);
}

#[test]
fn mysql_common_parses_every_shared_mariadb_event_in_full() {
    // Not only the bodies recovery reads: mysql_common's full parse (rows against their table
    // map included) succeeds on everything it knows in MariaDB 10.11's files, and MariaDB's
    // own types come back as unknown (`None`), not as an error.
    for n in fixtures::MARIADB {
        let data = file(n);
        let mut f = BinlogFile::new(BinlogVersion::Version4, &data[..]).unwrap();
        let mut unknown = BTreeSet::new();
        for ev in f.by_ref() {
            let ev = ev.unwrap();
            match ev.read_data().unwrap() {
                Some(_) => {}
                None => {
                    unknown.insert(ev.header().event_type_raw());
                }
            }
        }
        assert!(unknown.iter().all(|k| *k >= 160), "{n}: {unknown:?}");
    }
}

#[test]
fn recovery_reads_mariadb_gtids_with_ours_and_mysql_ones_with_mysql_common() {
    let data = file("mysql-bin.000002");
    let mut dec = Decoder::new("mysql-bin.000002");
    let mut gtids = Vec::new();
    for ev in Events::of_file("mysql-bin.000002", &data).unwrap() {
        let d = dec.decode(&ev.unwrap()).unwrap();
        if let Some((g, _)) = d.gtid {
            assert_eq!(d.reader, Reader::Native);
            gtids.push(g.to_string());
        }
    }
    assert_eq!(dec.flavour(), Flavour::Mariadb);
    assert_eq!(gtids.first().map(String::as_str), Some("0-1-6"));

    let data = Mysql8::with_gtid().bytes;
    let mut dec = Decoder::new("mysql8");
    let mut inner = Vec::new();
    let mut gtid = None;
    for ev in Events::of_file("mysql8", &data).unwrap() {
        let d = dec.decode(&ev.unwrap()).unwrap();
        if d.gtid.is_some() {
            assert_eq!(d.reader, Reader::MysqlCommon);
            gtid = d.gtid.clone();
        }
        inner.extend(d.inner);
    }
    assert_eq!(dec.flavour(), Flavour::Mysql);
    assert!(dec.checksum());
    assert_eq!(
        gtid,
        Some((
            Gtid::Mysql {
                uuid: mysql8_fixture::UUID.into(),
                gno: 7
            },
            false
        ))
    );
    let kinds: Vec<u8> = inner.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, vec![kind::QUERY, 19, 30, kind::XID]);
    assert_eq!(inner[0].query.as_deref(), Some("BEGIN"));
    assert!(inner.iter().all(|i| i.server_id == 1));
}

#[test]
fn a_rotate_written_with_the_other_checksum_setting_is_read_by_ours_only() {
    // In a relay log the replica's format description is in force, but the master's rotate
    // carries the master's checksum setting. Here: a replica with CRC32 (the fixture) and a
    // master without checksums (the fake rotate at 256 with its 4 checksum bytes cut off).
    let relay = file("relay-bin.000002");
    let fde = Events::of_file("r", &relay)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut rotate = relay[256..256 + 47 - 4].to_vec();
    rotate[9..13].copy_from_slice(&43u32.to_le_bytes());
    let ev = Events::new("r", &rotate, 256).next().unwrap().unwrap();
    let want = Some((4, "mysql-bin.000001".to_string()));
    assert_eq!(ev.rotate(), want, "ours finds the name's end");
    let mut common = Common::default();
    common.format_description("r", &fde).unwrap();
    let theirs = common.decode("r", &ev).unwrap().unwrap();
    assert_eq!(theirs.rotate, Some((4, "mysql-bin.00".to_string())));
    let mut dec = Decoder::new("r");
    dec.decode(&fde).unwrap();
    assert_eq!(dec.decode(&ev).unwrap().rotate, want, "recovery uses ours");
}

#[test]
fn mysql_common_panics_on_a_cut_event_so_our_framing_comes_first() {
    // A file still being written or cut by a crash: mysql_common's reader panics on the
    // truncated body (mysql_common 0.37.3 `Event::read`), ours stops before it.
    let f = Mysql8::anonymous();
    let data = &f.bytes;
    assert!(f.payload.len() > 26);
    let cut = data[..f.payload.start + 26].to_vec(); // inside the Transaction_payload event
    let r = std::panic::catch_unwind(|| {
        BinlogFile::new(BinlogVersion::Version4, &cut[..])
            .unwrap()
            .count()
    });
    assert!(r.is_err(), "mysql_common panics");
    let mut it = Events::of_file("cut", &cut).unwrap();
    assert_eq!(it.by_ref().count(), 3);
    assert_eq!(it.tail(), 26);
    // And an event shorter than its checksum is an error, not an underflow.
    let mut tiny = data[..f.fde.end].to_vec();
    let mut ev = data[f.rotate.start..f.rotate.start + HEADER_LEN].to_vec();
    ev[4] = kind::QUERY;
    ev[9..13].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    tiny.extend_from_slice(&ev);
    let evs: Vec<Event> = Events::of_file("t", &tiny)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    let mut dec = Decoder::new("t");
    dec.decode(&evs[0]).unwrap();
    assert!(dec.decode(&evs[1]).is_err());
}

#[test]
fn a_compressed_mysql8_transaction_is_read_and_kept_whole() {
    let f = Mysql8::with_gtid();
    let bin = &f.bytes;
    let fde = f.fde.end;
    let mut saved = MasterLog::default();
    // From the end of the format description to the end of the file.
    let tail = saved
        .push_binlog("binlog.000001", &bin[..fde], fde as u64, &bin[fde..])
        .unwrap();
    assert_eq!(tail, 0);
    let payload = saved
        .events()
        .iter()
        .find(|e| e.kind == kind::TRANSACTION_PAYLOAD)
        .unwrap();
    let inner: Vec<u8> = payload.inner.iter().map(|i| i.kind).collect();
    assert_eq!(inner, vec![kind::QUERY, 19, 30, kind::XID]);
    assert_eq!(payload.inner[0].query.as_deref(), Some("BEGIN"));
    let a = assemble(saved.fde().unwrap(), &[saved.events()], |_| false);
    assert_eq!((a.transactions, a.incomplete_events), (1, 0));
    let gtid = format!("{}:7", mysql8_fixture::UUID);
    assert_eq!(a.first_gtid.as_ref().unwrap().to_string(), gtid);
    assert_eq!(
        a.last,
        Some(BinlogCoord {
            file: "binlog.000001".into(),
            pos: f.payload.end as u64
        })
    );
    // Magic, format description, GTID event, the payload event as the master wrote it.
    assert_eq!(
        a.bytes,
        [&bin[..fde], &bin[f.gtid.start..f.payload.end]].concat()
    );
    // Read back (a resumed run), the payload is opened again.
    let back = MasterLog::from_assembled("a", &a.bytes).unwrap();
    assert_eq!(back.events()[1].inner, payload.inner);
    // The target has it: skipped by GTID.
    let a = assemble(saved.fde().unwrap(), &[saved.events()], |g| {
        g.to_string() == gtid
    });
    assert_eq!((a.transactions, a.skipped), (0, 1));
    // What our reader alone made of it: a payload it cannot open, so a transaction without
    // a visible end, left out as incomplete.
    let opaque: Vec<MasterEvent> = saved
        .events()
        .iter()
        .cloned()
        .map(|mut e| {
            e.inner.clear();
            e
        })
        .collect();
    let a = assemble(saved.fde().unwrap(), &[&opaque], |_| false);
    assert_eq!((a.transactions, a.incomplete_events), (0, 2));
}

#[test]
fn anonymous_gtid_events_open_transactions() {
    // gtid_mode=OFF (MySQL 5.7+): every transaction opens with an anonymous GTID event. A whole
    // transaction, then one cut right after its opener: the first is kept, the cut one left out.
    let f = Mysql8::anonymous();
    let bin = &f.bytes;
    let (fde, at) = (f.fde.end, f.gtid.start);
    let mut whole = MasterLog::default();
    whole
        .push_binlog(
            "binlog.000001",
            &bin[..fde],
            at as u64,
            &bin[at..f.payload.end],
        )
        .unwrap();
    let mut cut = MasterLog::default();
    cut.push_binlog(
        "binlog.000001",
        &bin[..fde],
        at as u64,
        &bin[f.gtid.clone()],
    )
    .unwrap();
    let a = assemble(
        whole.fde().unwrap(),
        &[whole.events(), cut.events()],
        |_| false,
    );
    assert_eq!((a.transactions, a.incomplete_events), (1, 1));
    assert_eq!(a.bytes, [&bin[..fde], &bin[at..f.payload.end]].concat());
}
