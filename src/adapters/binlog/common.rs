//! Event bodies read with mysql_common's binlog module (the reader mysql_async's binlog stream
//! uses, tested by its authors on MySQL's own binlog test files): format description (server
//! version, checksum algorithm), query text, MySQL GTIDs (tagged ones too), rotates, and MySQL
//! 8's Transaction_payload events, whose compressed (zstd) or plain payload holds the
//! transaction's events.
//!
//! mysql_common reads an event from a reader and assumes the event is whole: a truncated body
//! panics there (`read_exact(..).unwrap()` in `Event::read`, mysql_common 0.37.3 and 0.38.2),
//! and an event shorter than its checksum underflows. So it is only ever given events our
//! framing ([`super::Events`]) has cut whole and checked, and the events inside a payload are
//! framed here the same way before mysql_common reads them. A Transaction_payload event's
//! header is checked before mysql_common reads it too ([`check_payload_header`]): its reader
//! panics on a few forged values there.

use std::io::{BufRead, Read};

use mysql_common::binlog::consts::{BinlogChecksumAlg, BinlogVersion};
use mysql_common::binlog::events::{
    Event as McEvent, FormatDescriptionEvent, GtidEvent, QueryEvent, RotateEvent,
    TransactionPayloadEvent,
};

use super::decode::{Decoded, InnerEvent, Reader};
use super::{kind, BinlogError, Event, Gtid, HEADER_LEN};

/// A format description event, as mysql_common reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fde {
    pub server_version: String,
    /// Whether the events it describes end with a CRC32 checksum.
    pub checksum: bool,
}

/// mysql_common's reader, with the format description in force.
#[derive(Clone, Debug)]
pub struct Common {
    fde: FormatDescriptionEvent<'static>,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            fde: FormatDescriptionEvent::new(BinlogVersion::Version4),
        }
    }
}

impl Common {
    /// Reads a format description event and makes it the one in force.
    pub fn format_description(&mut self, file: &str, ev: &Event) -> Result<Fde, BinlogError> {
        // Server version (50 bytes at body offset 2), then the checksum algorithm and checksum.
        if ev.bytes.len() < HEADER_LEN + 57 {
            return Err(corrupt(file, ev, "format description event too short"));
        }
        let read = self.read(file, ev)?;
        let fde = read
            .read_event::<FormatDescriptionEvent<'_>>()
            .map_err(|e| corrupt(file, ev, &e.to_string()))?
            .into_owned()
            .with_footer(read.footer());
        let out = Fde {
            server_version: fde.server_version().trim_end_matches('\0').to_string(),
            checksum: matches!(
                read.footer().get_checksum_alg(),
                Ok(Some(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32))
            ),
        };
        self.fde = fde;
        Ok(out)
    }

    /// Whether the format description in force says events end with a CRC32 checksum.
    pub fn checksum(&self) -> bool {
        matches!(
            self.fde.footer().get_checksum_alg(),
            Ok(Some(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32))
        )
    }

    /// What recovery reads from `ev`, or None for an event type mysql_common does not know
    /// (MariaDB's own: annotate rows, binlog checkpoint, GTID, GTID list, start encryption).
    pub fn decode(&mut self, file: &str, ev: &Event) -> Result<Option<Decoded>, BinlogError> {
        let mut out = Decoded::new(Reader::MysqlCommon);
        if ev.kind == kind::FORMAT_DESCRIPTION {
            out.checksum = Some(self.format_description(file, ev)?.checksum);
            return Ok(Some(out));
        }
        let read = self.read(file, ev)?;
        if read.header().event_type().is_err() {
            return Ok(None);
        }
        // Only the bodies recovery needs are parsed (rows and table maps are carried as bytes).
        let bad = |e: std::io::Error| corrupt(file, ev, &e.to_string());
        match ev.kind {
            kind::QUERY => {
                let q = read.read_event::<QueryEvent<'_>>().map_err(bad)?;
                out.query = Some(q.query().into_owned());
            }
            kind::ROTATE => {
                let r = read.read_event::<RotateEvent<'_>>().map_err(bad)?;
                out.rotate = Some((r.position(), r.name().into_owned()));
            }
            kind::MYSQL_GTID | kind::MYSQL_GTID_TAGGED => {
                let g = read.read_event::<GtidEvent>().map_err(bad)?;
                out.gtid = Some((mysql_gtid(&g), false));
            }
            kind::TRANSACTION_PAYLOAD => {
                check_payload_header(read.data()).map_err(|why| corrupt(file, ev, &why))?;
                let p = read
                    .read_event::<TransactionPayloadEvent<'_>>()
                    .map_err(bad)?;
                out.inner = self.payload(&p).map_err(|why| corrupt(file, ev, &why))?;
            }
            _ => {}
        }
        Ok(Some(out))
    }

    /// The events inside a Transaction_payload event, in order. They carry no checksum
    /// (MySQL WL#3549) and are never payloads themselves.
    fn payload(&self, p: &TransactionPayloadEvent<'_>) -> Result<Vec<InnerEvent>, String> {
        let mut input = p.decompressed().map_err(|e| e.to_string())?;
        let mut footer = self.fde.footer();
        footer.set_checksum_enabled(false);
        let fde = self.fde.clone().with_footer(footer);
        let mut out = Vec::new();
        while !input.fill_buf().map_err(|e| e.to_string())?.is_empty() {
            let mut bytes = vec![0u8; HEADER_LEN];
            input
                .read_exact(&mut bytes)
                .map_err(|e| format!("payload event {}: header: {e}", out.len()))?;
            let size = u32::from_le_bytes(bytes[9..13].try_into().expect("4 bytes")) as usize;
            if size < HEADER_LEN {
                return Err(format!("payload event {}: size {size}", out.len()));
            }
            // The body is read as far as the data goes: a forged size allocates nothing.
            let body = (size - HEADER_LEN) as u64;
            (&mut input)
                .take(body)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("payload event {}: body: {e}", out.len()))?;
            if bytes.len() != size {
                return Err(format!(
                    "payload event {}: body: {} of {size} bytes",
                    out.len(),
                    bytes.len()
                ));
            }
            let read = McEvent::read(&fde, &bytes[..]).map_err(|e| e.to_string())?;
            let header = read.header();
            let mut inner = InnerEvent {
                kind: header.event_type_raw(),
                server_id: header.server_id(),
                end_log_pos: header.log_pos() as u64,
                len: size as u64,
                query: None,
            };
            match inner.kind {
                kind::QUERY => {
                    let q = read.read_event::<QueryEvent<'_>>();
                    inner.query = Some(q.map_err(|e| e.to_string())?.query().into_owned());
                }
                kind::TRANSACTION_PAYLOAD => {
                    return Err("a Transaction_payload event inside another".into())
                }
                _ => {}
            }
            out.push(inner);
        }
        Ok(out)
    }

    /// mysql_common's event for a whole event our framing cut (never a truncated one).
    pub(super) fn read(&self, file: &str, ev: &Event) -> Result<McEvent, BinlogError> {
        let trailer = if self.checksum() { 4 } else { 0 };
        if ev.bytes.len() < HEADER_LEN + trailer {
            return Err(corrupt(file, ev, "event shorter than its checksum"));
        }
        McEvent::read(&self.fde, ev.bytes).map_err(|e| corrupt(file, ev, &e.to_string()))
    }
}

/// A Transaction_payload event's header, checked before mysql_common reads it: its reader
/// panics on a field type or a compression type it does not know and on a field longer than
/// the event (mysql_common 0.37.3). The header is fields (type, length, value), each a
/// length-encoded integer, up to the end mark (type 0); MySQL's types are 1 (payload size),
/// 2 (compression: 0 zstd, 255 none) and 3 (uncompressed size); another type's value is
/// `length` bytes, skipped.
fn check_payload_header(mut data: &[u8]) -> Result<(), String> {
    fn lenenc(buf: &mut &[u8]) -> Result<u64, String> {
        let cut = || "payload header: cut short".to_string();
        let (&first, rest) = buf.split_first().ok_or_else(cut)?;
        let width = match first {
            0..=0xfa => {
                *buf = rest;
                return Ok(first.into());
            }
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            0xfb | 0xff => return Err(format!("payload header: bad integer prefix {first:#x}")),
        };
        let bytes = rest.get(..width).ok_or_else(cut)?;
        *buf = &rest[width..];
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
    while !data.is_empty() {
        match lenenc(&mut data)? {
            0 => break,
            1 | 3 => {
                lenenc(&mut data)?;
                lenenc(&mut data)?;
            }
            2 => {
                lenenc(&mut data)?;
                let alg = lenenc(&mut data)?;
                if alg != 0 && alg != 255 {
                    return Err(format!("payload header: unknown compression type {alg}"));
                }
            }
            field if field > 0xff => {
                return Err(format!("payload header: unknown field type {field}"));
            }
            _ => {
                let len = lenenc(&mut data)?;
                data = usize::try_from(len)
                    .ok()
                    .and_then(|len| data.get(len..))
                    .ok_or_else(|| {
                        format!("payload header: a field of {len} bytes is cut short")
                    })?;
            }
        }
    }
    Ok(())
}

/// uuid:gno, or uuid:tag:gno for a tagged GTID (MySQL 8.4): the tag rides in the uuid field,
/// so the text is MySQL's own.
fn mysql_gtid(g: &GtidEvent) -> Gtid {
    let mut uuid = super::uuid_text(&g.sid());
    if let Some(tag) = g.tag() {
        uuid = format!("{uuid}:{}", tag.as_str());
    }
    Gtid::Mysql { uuid, gno: g.gno() }
}

fn corrupt(file: &str, ev: &Event, why: &str) -> BinlogError {
    BinlogError::Corrupt {
        file: file.to_string(),
        offset: ev.offset,
        why: format!("mysql_common: {why}"),
    }
}
