//! The admin API's Rust face: the typed protobuf messages of proto/admin.proto (`pb`), and the
//! conversions between them and the domain types, both directions, in this one module. The
//! server turns domain values into messages (`From<&T>`); mhactl reads messages and renders
//! them (tables) or prints their documented JSON (`json`); a message arriving at the server is
//! checked on the way in (`TryFrom<pb::T>`, a malformed one is `ApiError`, never a panic).
//!
//! The replicated state's serde shape is not the API: a change of it changes neither the wire
//! nor (without the round-trip tests in `json` failing) mhactl's documented `--json`.

mod audit;
mod group;
mod journal;
pub mod json;
mod views;

pub use crate::proto::admin as pb;

use tonic::{Code, Status};

/// How many audit records the replicated state keeps (mhactl says so under its table).
pub const AUDIT_HISTORY: usize = crate::state::audit::AUDIT_HISTORY;

/// Response metadata of a "not leader" answer (FAILED_PRECONDITION): the leader's id and
/// address, which mhactl follows.
pub const LEADER_ID_KEY: &str = "x-mha-leader-id";
pub const LEADER_ADDR_KEY: &str = "x-mha-leader-addr";

/// Set on a refusal that the operator may override by repeating the call confirmed (`member
/// remove --yes`); mhactl then exits 2 with the explanation.
pub const NEEDS_CONFIRMATION_KEY: &str = "x-mha-needs-confirmation";

/// Whether a refusal asks for the operator's confirmation.
pub fn needs_confirmation(status: &Status) -> bool {
    status.code() == Code::FailedPrecondition
        && status.metadata().get(NEEDS_CONFIRMATION_KEY).is_some()
}

/// The leader address a "not leader" status points to, if any.
pub fn leader_redirect(status: &Status) -> Option<String> {
    if status.code() != Code::FailedPrecondition {
        return None;
    }
    status
        .metadata()
        .get(LEADER_ADDR_KEY)?
        .to_str()
        .ok()
        .map(str::to_string)
}

/// The leader's id a "not leader" status names, if any (mhactl then expects that node's own
/// certificate at the redirect address).
pub fn leader_redirect_id(status: &Status) -> Option<u64> {
    leader_redirect(status)?;
    status
        .metadata()
        .get(LEADER_ID_KEY)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A message that cannot be turned into a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}: required field missing")]
    Missing(&'static str),
    #[error("{field}: unknown value {value}")]
    UnknownEnum { field: &'static str, value: i32 },
    #[error("{field}: {value} is out of range")]
    OutOfRange { field: &'static str, value: u64 },
}

/// A required sub-message.
fn required<T>(v: Option<T>, field: &'static str) -> Result<T, ApiError> {
    v.ok_or(ApiError::Missing(field))
}

/// A port or another u16 carried as uint32.
fn u16_of(v: u32, field: &'static str) -> Result<u16, ApiError> {
    u16::try_from(v).map_err(|_| ApiError::OutOfRange {
        field,
        value: v.into(),
    })
}

/// Maps a domain enum to and from its generated protobuf enum, both ways, exhaustively.
macro_rules! enum_map {
    ($domain:ty, $wire:ty, $field:literal, { $($d:ident <=> $w:ident),+ $(,)? }) => {
        impl From<$domain> for $wire {
            fn from(v: $domain) -> $wire {
                match v { $(<$domain>::$d => <$wire>::$w),+ }
            }
        }
        impl TryFrom<i32> for $domain {
            type Error = crate::api::ApiError;
            fn try_from(v: i32) -> Result<Self, Self::Error> {
                match <$wire>::try_from(v) {
                    $(Ok(<$wire>::$w) => Ok(<$domain>::$d),)+
                    _ => Err(crate::api::ApiError::UnknownEnum { field: $field, value: v }),
                }
            }
        }
    };
}
pub(crate) use enum_map;
