//! What the runtime's own I/O fails with: the adapters' errors, and what a host's or a peer's
//! answer said. Step code turns them into a step's abort text; loops log them.

use crate::adapters::binlog::BinlogError;
use crate::adapters::mysql::MysqlError;
use crate::adapters::ssh::SshError;
use crate::engine::gtid::GtidError;
use crate::raft::NodeError;
use crate::runtime::credentials::CredentialError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Mysql(#[from] MysqlError),
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// This group's SSH pool could not be built (why).
    #[error("no SSH for this group: {0}")]
    NoSsh(String),
    #[error(transparent)]
    Binlog(#[from] BinlogError),
    #[error(transparent)]
    Gtid(#[from] GtidError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A command on a host failed, or printed what it never prints.
    #[error("{0}")]
    Host(String),
    /// A peer manager did not answer (why: its status, or the timeout).
    #[error("{0}")]
    Peer(String),
    #[error("no group named {0:?}")]
    NoGroup(String),
    #[error("group {0} has no master")]
    NoMaster(String),
}
