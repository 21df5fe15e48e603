//! The replay machinery phases 3.5 and 4 share: a cut of the master's events is written to the
//! target's host and replayed there with `mysqlbinlog | mysql` (what every MySQL/MariaDB host
//! has), leaving out what the target already has — so a resumed run applies nothing twice.

use std::time::Duration;

use super::{abort, RunCtx, StepError};
use crate::adapters::binlog::{assemble, Gtid, MasterEvent};
use crate::adapters::mysql::Session;
use crate::adapters::ssh::remote::{self, ReplayTarget};
use crate::engine::gtid;
use crate::model::{Flavor, ServerInfo};
use crate::runtime::error::RuntimeError;
use crate::state::group::ServerSpec;
use crate::state::recovery::RecoveryNote;
use crate::state::Cmd;

/// Reading binlog or relay-log files over SSH (they may be large).
pub(super) const FILE_READ: Duration = Duration::from_secs(120);
/// Placing a file on a host.
pub(super) const FILE_WRITE: Duration = Duration::from_secs(60);

/// What a target server already has, to leave out of what is applied to it.
pub(super) struct Have {
    flavor: Flavor,
    mariadb: std::collections::BTreeMap<(u32, u32), u64>,
    mysql: String,
    /// Whether what a client applies shows in the server's GTID state (MariaDB with the binlog
    /// on, or MySQL with gtid_mode ON): only then can a second apply leave out the first's work.
    pub tracks_applied: bool,
}

impl Have {
    /// Reads the server's GTID state (MariaDB: gtid_binlog_state, one entry per domain and
    /// server, and gtid_slave_pos; MySQL: gtid_executed).
    pub async fn query(sess: &mut Session, info: &ServerInfo) -> Result<Have, RuntimeError> {
        let flavor = info.dialect.flavor;
        let mariadb = match flavor {
            Flavor::MariaDb => {
                let (binlog_state, slave_pos) = sess.mariadb_gtid_state().await?;
                gtid::mariadb_last_seq([binlog_state.as_str(), slave_pos.as_str()])?
            }
            Flavor::MySql => Default::default(),
        };
        Ok(Have {
            flavor,
            mariadb,
            mysql: info.gtid.executed.clone(),
            tracks_applied: match flavor {
                Flavor::MariaDb => info.log_bin,
                Flavor::MySql => info.gtid.enabled,
            },
        })
    }

    pub fn has(&self, g: &Gtid) -> bool {
        match (g, self.flavor) {
            (
                Gtid::Mariadb {
                    domain,
                    server,
                    seq,
                },
                Flavor::MariaDb,
            ) => self
                .mariadb
                .get(&(*domain, *server))
                .is_some_and(|m| seq <= m),
            (Gtid::Mysql { uuid, gno }, Flavor::MySql) => {
                gtid::mysql_contains(&self.mysql, uuid, *gno)
            }
            _ => false,
        }
    }
}

impl RunCtx {
    /// `<remote_workdir>/mha-raft-<group>-run<id>-<what>-<server>.binlog`: the server's name
    /// keeps hosts that share a filesystem apart.
    /// (engine::failover::workfiles; created 0600, removed by phase 5.)
    pub(super) fn workfile(&self, what: &str, server: &str) -> String {
        crate::engine::failover::workfiles::path(
            &self.group.spec.failover.remote_workdir,
            &self.group.spec.name,
            self.id,
            what,
            server,
        )
    }

    pub(super) fn ssh_of(&self, s: &ServerSpec) -> (String, u16) {
        s.ssh_target(&self.group.spec.ssh)
    }

    /// Applies `parts` to server `s` (session `sess`): what it already has is left out, the
    /// rest is written to its host and replayed with `mysqlbinlog | mysql`. Returns a summary.
    pub(super) async fn apply_events(
        &self,
        s: &ServerSpec,
        sess: &mut Session,
        fde: &[u8],
        parts: &[&[MasterEvent]],
    ) -> Result<String, StepError> {
        let info = sess.server_info().await.map_err(abort)?;
        let have = Have::query(sess, &info).await.map_err(abort)?;
        let a = assemble(fde, parts, |g| have.has(g));
        if a.transactions == 0 {
            return Ok(format!(
                "nothing to apply ({} transactions already present)",
                a.skipped
            ));
        }
        let path = self.workfile("apply", &s.name);
        let (h, p) = self.ssh_of(s);
        let pool = self.ssh().map_err(abort)?;
        let bindir = self.client_bindir();
        // One round trip: stdin carries the password (first line, into MYSQL_PWD: never argv)
        // and then the file, which is kept on the host (0600) until phase 5 before it is
        // replayed.
        let cmd = remote::replay_binlog(
            &ReplayTarget {
                host: &s.host,
                port: s.port,
                user: &self.group.spec.user,
                bindir: bindir.as_deref(),
            },
            &path,
        );
        let mut input = format!("{}\n", self.password.expose()).into_bytes();
        input.extend_from_slice(&a.bytes);
        let limit = Duration::from_millis(self.group.spec.failover.apply_timeout_ms);
        self.guard().await?;
        let out = pool
            .exec_with_input(&h, p, &cmd, Some(&input), limit)
            .await
            .map_err(abort)?;
        if !out.success() {
            return Err(abort(self.password.redact(&format!(
                "applying {path} on {} failed (exit {:?}): {}",
                s.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))));
        }
        Ok(format!(
            "applied {} transactions ({} events, {} bytes; GTIDs {}..{}){}",
            a.transactions,
            a.events,
            a.bytes.len(),
            a.first_gtid.map(|g| g.to_string()).unwrap_or("-".into()),
            a.last_gtid.map(|g| g.to_string()).unwrap_or("-".into()),
            if a.skipped > 0 {
                format!(", {} already present left out", a.skipped)
            } else {
                String::new()
            }
        ))
    }

    pub(super) async fn record(&self, note: RecoveryNote) -> Result<(), StepError> {
        match self
            .commit(Cmd::RecordRecovery { run: self.id, note })
            .await?
        {
            crate::state::CmdResult::Rejected(reason) => Err(abort(reason)),
            _ => Ok(()),
        }
    }
}
