//! A MySQL 8.0.32 binlog file built in memory, for the tests: no MySQL server can run on this
//! project's machines, so instead of a captured file the tests write one themselves, event by
//! event, with mysql_common's event types and its event writer (which computes the CRC32 of
//! each event), and compress the transaction with zstd as a server with
//! `binlog_transaction_compression=ON` does.
//!
//! The file: the magic number, a format description (server version 8.0.32, CRC32), a
//! Previous_gtids event, then one transaction — an anonymous GTID event (gtid_mode=OFF) or a
//! GTID event `uuid:gno` — whose events (query `BEGIN`, table map, write rows with two rows,
//! XID) are inside one zstd-compressed Transaction_payload event, and a rotate to the next file
//! that closes it. Positions are the ones a server writes: each event's `log_pos` is where the
//! next one starts; the events inside the payload carry no checksum and `log_pos` 0.

use std::ops::Range;

use mysql_common::binlog::consts::{
    BinlogVersion, EventFlags, EventType, StatusVarKey, TransactionPayloadCompressionType,
};
use mysql_common::binlog::events::{
    AnonymousGtidEvent, BinlogEventHeader, Event as McEvent, FormatDescriptionEvent, GtidEvent,
    PreviousGtidsEvent, PreviousGtidsSid, QueryEvent, RotateEvent, TransactionPayloadEvent,
    XidEvent,
};
use mysql_common::constants::{ColumnType, SqlMode};
use mysql_common::packets::GnoInterval;
use mysql_common::proto::MySerialize;

use super::MAGIC;

/// The server that wrote the file.
pub const SERVER_ID: u32 = 1;
pub const SERVER_VERSION: &str = "8.0.32";
/// The server uuid of [`Mysql8::with_gtid`]'s GTID; the file's Previous_gtids event says
/// `UUID:1-6` were written before it.
pub const UUID: &str = "5c0a6f1e-3b7d-11ef-8a42-0242ac120002";
pub const GNO: u64 = 7;
/// The file's name and the next one, which its closing rotate names.
pub const FILE: &str = "binlog.000001";
pub const NEXT_FILE: &str = "binlog.000002";
/// The table the transaction writes to: `mha.t1 (id INT NOT NULL, name VARCHAR(20) NULL)`,
/// utf8mb4, and the rows it writes.
pub const SCHEMA: &str = "mha";
pub const TABLE: &str = "t1";
pub const TABLE_ID: u64 = 92;
pub const ROWS: [(i32, Option<&str>); 2] = [(1, Some("one")), (2, None)];
/// The XID of the transaction.
pub const XID: u64 = 461;

/// `binlog_transaction_compression_level_zstd`'s default.
const ZSTD_LEVEL: i32 = 3;
/// When the file was written (seconds since the epoch).
const WHEN: u32 = 1_717_000_000;
/// utf8mb4_0900_ai_ci, MySQL 8.0's default collation.
const UTF8MB4_0900_AI_CI: u16 = 255;

/// The built file and where each of its events is.
pub struct Mysql8 {
    pub bytes: Vec<u8>,
    pub fde: Range<usize>,
    pub previous_gtids: Range<usize>,
    /// The anonymous GTID event or the GTID event.
    pub gtid: Range<usize>,
    pub payload: Range<usize>,
    pub rotate: Range<usize>,
    /// The events inside the payload, as they were before compression.
    pub inner: Vec<u8>,
}

impl Mysql8 {
    /// As a server with gtid_mode=OFF writes it: an anonymous GTID event opens the
    /// transaction.
    pub fn anonymous() -> Mysql8 {
        build(None)
    }

    /// As a server with gtid_mode=ON writes it: the GTID event [`UUID`]:[`GNO`].
    pub fn with_gtid() -> Mysql8 {
        build(Some((uuid_bytes(UUID), GNO)))
    }

    /// [`Mysql8::with_gtid`] with `inner` (any bytes) compressed into its payload event
    /// instead of the transaction: the hostile-input tests' way into the payload's framing.
    pub fn with_inner(inner: Vec<u8>) -> Mysql8 {
        build_with(Some((uuid_bytes(UUID), GNO)), inner)
    }

    /// The events of the transaction, as they go into the payload.
    pub fn transaction() -> Vec<u8> {
        transaction()
    }
}

/// The 16 bytes of a uuid written with dashes.
pub fn uuid_bytes(uuid: &str) -> [u8; 16] {
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

fn build(gtid: Option<([u8; 16], u64)>) -> Mysql8 {
    build_with(gtid, transaction())
}

fn build_with(gtid: Option<([u8; 16], u64)>, inner: Vec<u8>) -> Mysql8 {
    let mut w = Writer {
        out: MAGIC.to_vec(),
        fde: FormatDescriptionEvent::new(BinlogVersion::Version4),
    };
    let fde = w.format_description();
    let previous: Vec<PreviousGtidsSid<'_>> = match gtid {
        Some((sid, gno)) => vec![PreviousGtidsSid::new(
            sid,
            None,
            vec![GnoInterval::new(1, gno)],
        )],
        None => Vec::new(),
    };
    let previous_gtids = w.event(
        EventType::PREVIOUS_GTIDS_EVENT,
        EventFlags::LOG_EVENT_IGNORABLE_F,
        WHEN,
        &body(&PreviousGtidsEvent::new(previous)),
    );

    // The transaction, then its payload event, which the GTID event's transaction length
    // counts along with the GTID event itself.
    let compressed = zstd::encode_all(&inner[..], ZSTD_LEVEL).expect("zstd");
    let payload = body(&TransactionPayloadEvent::new(
        compressed.len() as u64,
        TransactionPayloadCompressionType::ZSTD,
        inner.len() as u64,
        compressed,
    ));
    let payload_len = event_len(&payload);
    let (kind, sid, gno) = match gtid {
        Some((sid, gno)) => (EventType::GTID_EVENT, sid, gno),
        None => (EventType::ANONYMOUS_GTID_EVENT, [0; 16], 0),
    };
    let gtid_body = |tx_length: u64| {
        let g = GtidEvent::new(sid, gno)
            .with_last_committed(0)
            .with_sequence_number(1)
            .with_immediate_commit_timestamp(u64::from(WHEN + 1) * 1_000_000)
            .with_original_commit_timestamp(u64::from(WHEN + 1) * 1_000_000)
            .with_tx_length(tx_length)
            .with_immediate_server_version(80032)
            .with_original_server_version(80032);
        if kind == EventType::GTID_EVENT {
            body(&g)
        } else {
            body(&AnonymousGtidEvent(g))
        }
    };
    // The length is written in the GTID event with a variable-length integer: settle it.
    let mut tx_length = 0;
    while tx_length != event_len(&gtid_body(tx_length)) + payload_len {
        tx_length = event_len(&gtid_body(tx_length)) + payload_len;
    }
    let gtid = w.event(kind, EventFlags::empty(), WHEN + 1, &gtid_body(tx_length));
    let payload = w.event(
        EventType::TRANSACTION_PAYLOAD_EVENT,
        EventFlags::empty(),
        WHEN + 1,
        &payload,
    );
    let rotate = w.event(
        EventType::ROTATE_EVENT,
        EventFlags::empty(),
        WHEN + 2,
        &body(&RotateEvent::new(4, NEXT_FILE.as_bytes())),
    );
    Mysql8 {
        bytes: w.out,
        fde,
        previous_gtids,
        gtid,
        payload,
        rotate,
        inner,
    }
}

/// The events of the transaction, as they go into the payload: no checksum (the payload event
/// has one) and `log_pos` 0.
fn transaction() -> Vec<u8> {
    let mut status = Vec::new();
    status.push(StatusVarKey::Flags2 as u8);
    status.extend_from_slice(&0u32.to_le_bytes());
    status.push(StatusVarKey::SqlMode as u8);
    let mode = SqlMode::MODE_ONLY_FULL_GROUP_BY
        | SqlMode::MODE_STRICT_TRANS_TABLES
        | SqlMode::MODE_NO_ZERO_IN_DATE
        | SqlMode::MODE_NO_ZERO_DATE
        | SqlMode::MODE_ERROR_FOR_DIVISION_BY_ZERO
        | SqlMode::MODE_NO_ENGINE_SUBSTITUTION;
    status.extend_from_slice(&mode.bits().to_le_bytes());
    status.push(StatusVarKey::CatalogNz as u8);
    status.push(3);
    status.extend_from_slice(b"std");
    status.push(StatusVarKey::Charset as u8);
    for _ in 0..3 {
        status.extend_from_slice(&UTF8MB4_0900_AI_CI.to_le_bytes());
    }
    status.push(StatusVarKey::DefaultCollationForUtf8mb4 as u8);
    status.extend_from_slice(&UTF8MB4_0900_AI_CI.to_le_bytes());
    let begin = QueryEvent::new(status, SCHEMA.as_bytes())
        .with_thread_id(8)
        .with_query(&b"BEGIN"[..]);

    let mut out = Vec::new();
    inner_event(
        &mut out,
        EventType::QUERY_EVENT,
        EventFlags::LOG_EVENT_SUPPRESS_USE_F,
        &body(&begin),
    );
    inner_event(
        &mut out,
        EventType::TABLE_MAP_EVENT,
        EventFlags::empty(),
        &table_map(),
    );
    inner_event(
        &mut out,
        EventType::WRITE_ROWS_EVENT,
        EventFlags::empty(),
        &write_rows(),
    );
    inner_event(
        &mut out,
        EventType::XID_EVENT,
        EventFlags::empty(),
        &body(&XidEvent { xid: XID }),
    );
    out
}

/// VARCHAR(20) in utf8mb4: at most 80 bytes, so one length byte before each value.
const NAME_MAX_BYTES: u16 = 20 * 4;
/// Rows event flag: the last rows event of the statement.
const STMT_END_F: u16 = 1;

/// A table map body (mysql_common has no builder for it), laid out as MySQL's binlog format
/// documents it: table id (6 bytes) and flags (2), schema and table names (length byte,
/// name, NUL), column count, column types, type metadata, the nullable-column bitmap, and the
/// optional metadata MySQL 8 writes with binlog_row_metadata=MINIMAL (signedness of the
/// numeric columns, the default charset of the character columns).
fn table_map() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&TABLE_ID.to_le_bytes()[..6]);
    b.extend_from_slice(&1u16.to_le_bytes());
    for name in [SCHEMA, TABLE] {
        b.push(name.len() as u8);
        b.extend_from_slice(name.as_bytes());
        b.push(0);
    }
    b.push(2); // columns
    b.push(ColumnType::MYSQL_TYPE_LONG as u8);
    b.push(ColumnType::MYSQL_TYPE_VARCHAR as u8);
    b.push(2); // metadata: none for INT, the maximum length in bytes for VARCHAR
    b.extend_from_slice(&NAME_MAX_BYTES.to_le_bytes());
    b.push(0b10); // nullable: `name`
                  // Optional metadata, each field as type, length, value.
    b.extend_from_slice(&[1, 1, 0b0000_0000]); // SIGNEDNESS: `id` is signed
    b.push(2); // DEFAULT_CHARSET: utf8mb4_0900_ai_ci (255, a 3-byte length-encoded integer)
    b.push(3);
    b.push(0xfc);
    b.extend_from_slice(&UTF8MB4_0900_AI_CI.to_le_bytes());
    b
}

/// A write rows (v2) body for [`ROWS`]: table id and flags, the extra data length (2: none
/// but itself), column count, the bitmap of the columns present, then each row: its NULL
/// bitmap and its values (INT: 4 bytes; VARCHAR: length byte and bytes).
fn write_rows() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&TABLE_ID.to_le_bytes()[..6]);
    b.extend_from_slice(&STMT_END_F.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.push(2);
    b.push(0b11);
    for (id, name) in ROWS {
        b.push(if name.is_none() { 0b10 } else { 0 });
        b.extend_from_slice(&id.to_le_bytes());
        if let Some(name) = name {
            b.push(name.len() as u8);
            b.extend_from_slice(name.as_bytes());
        }
    }
    b
}

/// The body mysql_common's serializer writes for `ev`.
fn body(ev: &impl MySerialize) -> Vec<u8> {
    let mut b = Vec::new();
    ev.serialize(&mut b);
    b
}

/// The length of an event in the file (header, body, CRC32) with this body.
fn event_len(body: &[u8]) -> u64 {
    (BinlogEventHeader::LEN + body.len() + 4) as u64
}

/// Appends an event inside the payload: header (`log_pos` 0) and body.
fn inner_event(out: &mut Vec<u8>, kind: EventType, flags: EventFlags, body: &[u8]) {
    let size = (BinlogEventHeader::LEN + body.len()) as u32;
    let header = BinlogEventHeader::new(WHEN + 1, kind, SERVER_ID, size, 0, flags);
    header.serialize(out);
    out.extend_from_slice(body);
}

/// Writes events at the end of the file through mysql_common's event writer.
struct Writer {
    out: Vec<u8>,
    /// The format description in force, once written.
    fde: FormatDescriptionEvent<'static>,
}

impl Writer {
    /// The format description event: binlog format 4, server 8.0.32, the post-header lengths
    /// of MySQL 8.0's event types, CRC32 checksums.
    fn format_description(&mut self) -> Range<usize> {
        let fde = FormatDescriptionEvent::new(BinlogVersion::Version4)
            .with_server_version(SERVER_VERSION.as_bytes())
            .with_create_timestamp(0)
            .with_event_type_header_lengths(post_header_lengths());
        let mut b = body(&fde);
        b.push(1); // the checksum algorithm: CRC32 (its checksum follows, as for every event)
        let at = self.event(
            EventType::FORMAT_DESCRIPTION_EVENT,
            EventFlags::empty(),
            WHEN,
            &b,
        );
        let written = McEvent::read(&self.fde, &self.out[at.clone()]).expect("fde");
        self.fde = written
            .read_event::<FormatDescriptionEvent<'_>>()
            .expect("fde")
            .into_owned()
            .with_footer(written.footer());
        at
    }

    /// Appends an event: header, body and a checksum placeholder, read back by mysql_common
    /// as an event and written by its writer, which computes the CRC32 in place of the
    /// placeholder.
    fn event(
        &mut self,
        kind: EventType,
        flags: EventFlags,
        when: u32,
        body: &[u8],
    ) -> Range<usize> {
        let at = self.out.len();
        let size = BinlogEventHeader::LEN + body.len() + 4;
        let header = BinlogEventHeader::new(
            when,
            kind,
            SERVER_ID,
            size as u32,
            (at + size) as u32,
            flags,
        );
        let mut raw = Vec::with_capacity(size);
        header.serialize(&mut raw);
        raw.extend_from_slice(body);
        raw.extend_from_slice(&[0; 4]);
        let ev = McEvent::read(&self.fde, &raw[..]).expect("event");
        ev.write(BinlogVersion::Version4, &mut self.out)
            .expect("write");
        assert_eq!(self.out.len(), at + size, "{kind:?}: size");
        at..at + size
    }
}

/// The post-header length of each event type (1 to 41), as MySQL 8.0's format description
/// lists them; mysql_common's constants where they say the same. MySQL 8.0 differs from them
/// in four places: the start event v3 it no longer writes (0), its own format description
/// (56 + 1 + 41 = 98: the start event's post-header, the header length, one byte per type),
/// the Transaction_payload event (40) and the heartbeat v2 event (41: 0).
fn post_header_lengths() -> Vec<u8> {
    type F<'a> = FormatDescriptionEvent<'a>;
    let mut out: Vec<u8> = Vec::new();
    for t in 1u8..=41 {
        let len = match EventType::try_from(t) {
            Ok(EventType::START_EVENT_V3) => 0,
            Ok(EventType::FORMAT_DESCRIPTION_EVENT) => F::START_V3_HEADER_LEN + 1 + 41,
            Ok(EventType::TRANSACTION_PAYLOAD_EVENT) => 40,
            Ok(EventType::QUERY_EVENT) => F::QUERY_HEADER_LEN,
            Ok(EventType::ROTATE_EVENT) => F::ROTATE_HEADER_LEN,
            Ok(EventType::APPEND_BLOCK_EVENT) => F::APPEND_BLOCK_HEADER_LEN,
            Ok(EventType::DELETE_FILE_EVENT) => F::DELETE_FILE_HEADER_LEN,
            Ok(EventType::BEGIN_LOAD_QUERY_EVENT) => F::BEGIN_LOAD_QUERY_HEADER_LEN,
            Ok(EventType::EXECUTE_LOAD_QUERY_EVENT) => F::EXECUTE_LOAD_QUERY_HEADER_LEN,
            Ok(EventType::TABLE_MAP_EVENT) => F::TABLE_MAP_HEADER_LEN,
            Ok(
                EventType::WRITE_ROWS_EVENT_V1
                | EventType::UPDATE_ROWS_EVENT_V1
                | EventType::DELETE_ROWS_EVENT_V1,
            ) => F::ROWS_HEADER_LEN_V1,
            Ok(EventType::INCIDENT_EVENT) => F::INCIDENT_HEADER_LEN,
            Ok(
                EventType::WRITE_ROWS_EVENT
                | EventType::UPDATE_ROWS_EVENT
                | EventType::DELETE_ROWS_EVENT
                | EventType::PARTIAL_UPDATE_ROWS_EVENT,
            ) => F::ROWS_HEADER_LEN_V2,
            Ok(EventType::GTID_EVENT | EventType::ANONYMOUS_GTID_EVENT) => F::GTID_HEADER_LEN,
            Ok(EventType::TRANSACTION_CONTEXT_EVENT) => F::TRANSACTION_CONTEXT_HEADER_LEN,
            Ok(EventType::VIEW_CHANGE_EVENT) => F::VIEW_CHANGE_HEADER_LEN,
            // The others have none: stop, intvar, the load events, rand, user var, XID, the
            // pre-GA rows events, heartbeat, ignorable, rows query, previous GTIDs,
            // XA prepare, heartbeat v2 (41, unknown to mysql_common).
            _ => 0,
        };
        out.push(len as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    //! The built file holds what the other tests rely on: a server's positions and checksums
    //! (checked here with a CRC32 of our own, not mysql_common's), and events mysql_common
    //! parses in full, rows included.

    use std::io::Read;

    use mysql_common::binlog::consts::BinlogChecksumAlg;
    use mysql_common::binlog::events::{EventData, RowsEventData, StatusVarVal};
    use mysql_common::binlog::value::BinlogValue;
    use mysql_common::binlog::BinlogFile;
    use mysql_common::Value;

    use super::super::{kind, Event, Events};
    use super::*;

    /// CRC-32 as zlib and MySQL compute it (IEEE 802.3 polynomial, reflected), bit by bit.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for b in bytes {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0xedb8_8320
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    #[test]
    fn crc32_is_the_usual_one() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn positions_and_checksums_are_a_servers() {
        for (f, opener) in [
            (Mysql8::anonymous(), kind::MYSQL_ANONYMOUS_GTID),
            (Mysql8::with_gtid(), kind::MYSQL_GTID),
        ] {
            let evs: Vec<Event> = Events::of_file(FILE, &f.bytes)
                .unwrap()
                .map(|e| e.unwrap())
                .collect();
            let kinds: Vec<u8> = evs.iter().map(|e| e.kind).collect();
            assert_eq!(
                kinds,
                [
                    kind::FORMAT_DESCRIPTION,
                    kind::MYSQL_PREVIOUS_GTIDS,
                    opener,
                    kind::TRANSACTION_PAYLOAD,
                    kind::ROTATE
                ]
            );
            let at = [&f.fde, &f.previous_gtids, &f.gtid, &f.payload, &f.rotate];
            assert_eq!(f.fde.start, MAGIC.len());
            for (e, r) in evs.iter().zip(at) {
                assert_eq!(e.offset as usize..e.offset as usize + e.bytes.len(), *r);
                // Where the next event starts, as in a server's own binlog.
                assert_eq!(e.end_log_pos as usize, r.end);
                assert_eq!(e.server_id, SERVER_ID);
                let (data, sum) = e.bytes.split_at(e.bytes.len() - 4);
                assert_eq!(crc32(data).to_le_bytes(), sum, "{}: CRC32", e.kind);
            }
            assert_eq!(f.rotate.end, f.bytes.len());
            // Header, post-header (57), the 41 post-header lengths, algorithm, CRC32: the size
            // of MySQL 8.0's format description event.
            assert_eq!(f.fde.len(), 19 + 57 + 41 + 1 + 4);
            assert!(evs[0].fde_checksum());
            assert_eq!(evs[4].rotate(), Some((4, NEXT_FILE.to_string())));
            // The events inside the payload: no checksum, log_pos 0, one after the other.
            let mut at = 0;
            let mut inner = Vec::new();
            while at < f.inner.len() {
                let size = u32::from_le_bytes(f.inner[at + 9..at + 13].try_into().unwrap());
                let log_pos = u32::from_le_bytes(f.inner[at + 13..at + 17].try_into().unwrap());
                assert_eq!(log_pos, 0);
                inner.push(f.inner[at + 4]);
                at += size as usize;
            }
            assert_eq!(at, f.inner.len());
            assert_eq!(inner, [kind::QUERY, 19, 30, kind::XID]);
        }
    }

    #[test]
    fn mysql_common_parses_every_event_in_full() {
        for (f, gtid) in [
            (Mysql8::anonymous(), None),
            (Mysql8::with_gtid(), Some((uuid_bytes(UUID), GNO))),
        ] {
            let mut file = BinlogFile::new(BinlogVersion::Version4, &f.bytes[..]).unwrap();
            let mut kinds = Vec::new();
            let mut inner_kinds = Vec::new();
            let mut rows = Vec::new();
            while let Some(ev) = file.next() {
                let ev = ev.unwrap();
                kinds.push(ev.header().event_type_raw());
                match ev.read_data().unwrap().unwrap() {
                    EventData::FormatDescriptionEvent(fde) => {
                        assert_eq!(fde.server_version().trim_end_matches('\0'), "8.0.32");
                        assert_eq!(fde.split_version(), (8, 0, 32));
                        assert_eq!(
                            fde.footer().get_checksum_alg(),
                            Ok(Some(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32))
                        );
                    }
                    EventData::PreviousGtidsEvent(p) => match gtid {
                        None => assert!(p.sids().is_empty()),
                        Some((sid, gno)) => {
                            assert_eq!(p.sids().len(), 1);
                            assert_eq!(p.sids()[0].uuid(), sid);
                            let i = p.sids()[0].intervals();
                            assert_eq!((i.len(), i[0].start(), i[0].end()), (1, 1, gno));
                        }
                    },
                    EventData::AnonymousGtidEvent(g) => {
                        assert!(gtid.is_none());
                        assert_eq!((g.0.sid(), g.0.gno()), ([0; 16], 0));
                        assert_eq!(g.0.tx_length(), (f.gtid.len() + f.payload.len()) as u64);
                    }
                    EventData::GtidEvent(g) => {
                        assert_eq!(Some((g.sid(), g.gno())), gtid);
                        assert_eq!(g.tx_length(), (f.gtid.len() + f.payload.len()) as u64);
                    }
                    EventData::TransactionPayloadEvent(p) => {
                        assert_eq!(p.algorithm(), TransactionPayloadCompressionType::ZSTD);
                        assert_eq!(p.uncompressed_size(), f.inner.len() as u64);
                        assert!(p.payload_size() < p.uncompressed_size(), "compressed");
                        let mut raw = Vec::new();
                        p.decompressed().unwrap().read_to_end(&mut raw).unwrap();
                        assert_eq!(raw, f.inner);
                        let mut input = p.decompressed().unwrap();
                        while let Some(inner) =
                            file.reader_mut().read_decompressed(&mut input).unwrap()
                        {
                            let h = inner.header();
                            assert_eq!((h.server_id(), h.log_pos()), (SERVER_ID, 0));
                            inner_kinds.push(h.event_type_raw());
                            match inner.read_data().unwrap().unwrap() {
                                EventData::QueryEvent(q) => {
                                    assert_eq!(
                                        (q.query(), q.schema()),
                                        ("BEGIN".into(), "mha".into())
                                    );
                                    let vars: Vec<_> = q.status_vars().iter().collect();
                                    assert_eq!(vars.len(), 5);
                                    assert!(vars.iter().all(|v| v.get_value().is_ok()));
                                    let charset = q
                                        .status_vars()
                                        .get_status_var(StatusVarKey::Charset)
                                        .unwrap();
                                    assert!(matches!(
                                        charset.get_value(),
                                        Ok(StatusVarVal::Charset {
                                            charset_client: 255,
                                            collation_connection: 255,
                                            collation_server: 255
                                        })
                                    ));
                                }
                                EventData::TableMapEvent(t) => {
                                    assert_eq!(t.table_id(), TABLE_ID);
                                    assert_eq!(t.database_name(), SCHEMA);
                                    assert_eq!(t.table_name(), TABLE);
                                    assert_eq!(t.columns_count(), 2);
                                    assert_eq!(
                                        t.get_column_type(0),
                                        Ok(Some(ColumnType::MYSQL_TYPE_LONG))
                                    );
                                    assert_eq!(
                                        t.get_column_type(1),
                                        Ok(Some(ColumnType::MYSQL_TYPE_VARCHAR))
                                    );
                                    let meta: Vec<_> =
                                        t.iter_optional_meta().map(|m| m.unwrap()).collect();
                                    assert_eq!(meta.len(), 2, "{meta:?}");
                                }
                                EventData::RowsEvent(RowsEventData::WriteRowsEvent(w)) => {
                                    let tme = file.reader().get_tme(w.table_id()).unwrap();
                                    for row in w.rows(tme) {
                                        let (before, after) = row.unwrap();
                                        assert!(before.is_none());
                                        rows.push(after.unwrap().unwrap());
                                    }
                                }
                                EventData::XidEvent(x) => assert_eq!(x.xid, XID),
                                other => panic!("unexpected inner event {other:?}"),
                            }
                        }
                    }
                    EventData::RotateEvent(r) => {
                        assert_eq!((r.position(), r.name()), (4, NEXT_FILE.into()));
                    }
                    other => panic!("unexpected event {other:?}"),
                }
            }
            assert_eq!(kinds.len(), 5);
            assert_eq!(inner_kinds, [kind::QUERY, 19, 30, kind::XID]);
            let v = BinlogValue::Value;
            assert_eq!(
                rows,
                [
                    vec![v(Value::Int(1)), v(Value::Bytes(b"one".to_vec()))],
                    vec![v(Value::Int(2)), v(Value::NULL)],
                ]
            );
        }
    }
}
