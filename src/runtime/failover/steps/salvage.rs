//! Phase 3.2 (save the dead master's binlog over SSH) and the apply machinery phases 3.5 and 4
//! share: a cut of the master's events is written to the target's host and replayed there with
//! `mysqlbinlog | mysql` (what every MySQL/MariaDB host has), leaving out what the target
//! already has — so a resumed run applies nothing twice.

use std::time::Duration;

use futures::future::join_all;

use super::{abort, RunCtx, StepError, StepResult};
use crate::adapters::binlog::{assemble, Gtid, MasterEvent, MasterLog};
use crate::adapters::mysql::Session;
use crate::adapters::ssh::shell_quote;
use crate::engine::failover as plan;
use crate::engine::gtid;
use crate::model::{BinlogCoord, Flavor, SalvagePlan, ServerInfo};
use crate::state::group::ServerSpec;
use crate::state::journal::FailoverRun;
use crate::state::recovery::{RecoveryNote, Salvage};
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
    pub async fn query(sess: &mut Session, info: &ServerInfo) -> Result<Have, String> {
        let flavor = info.dialect.flavor;
        let mariadb = match flavor {
            Flavor::MariaDb => {
                let (binlog_state, slave_pos) =
                    sess.mariadb_gtid_state().await.map_err(|e| e.to_string())?;
                gtid::mariadb_last_seq([binlog_state.as_str(), slave_pos.as_str()])
                    .map_err(|e| e.to_string())?
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

/// The first three text lines of `out` and the bytes after them.
fn split_lines3(out: &[u8]) -> Option<(String, String, String, &[u8])> {
    let mut rest = out;
    let mut lines = Vec::new();
    for _ in 0..3 {
        let nl = rest.iter().position(|b| *b == b'\n')?;
        lines.push(String::from_utf8_lossy(&rest[..nl]).into_owned());
        rest = &rest[nl + 1..];
    }
    let size = lines.pop()?;
    let listing = lines.pop()?;
    let dir = lines.pop()?;
    Some((dir, listing, size, rest))
}

impl RunCtx {
    /// `<remote_workdir>/mha-raft-<group>-run<id>-<what>-<server>.binlog`: the server's name
    /// keeps hosts that share a filesystem apart.
    pub(super) fn workfile(&self, what: &str, server: &str) -> String {
        format!(
            "{}/mha-raft-{}-run{}-{what}-{server}.binlog",
            self.group
                .spec
                .failover
                .remote_workdir
                .trim_end_matches('/'),
            self.group.spec.name,
            self.id
        )
    }

    fn client_tool(&self, tool: &str) -> String {
        match &self.group.spec.failover.client_bindir {
            Some(d) => shell_quote(&format!("{}/{tool}", d.trim_end_matches('/'))),
            None => tool.to_string(),
        }
    }

    pub(super) fn ssh_of(&self, s: &ServerSpec) -> (String, u16) {
        s.ssh_target(&self.group.spec.ssh)
    }

    /// Phase 3.2: reads the dead master's binlog from the latest replica's read position to its
    /// end over SSH and leaves a copy on every survivor. A dead host is not an error: the journal
    /// says what could not be saved.
    pub(super) async fn save_master_binlog(&mut self, run: &FailoverRun) -> StepResult {
        if let Some(s) = &run.recovery.salvage {
            return Ok(format!("already done: {}", s.detail));
        }
        let obs = match &self.latest {
            Some(o) => o.clone(),
            None => self.observe(run).await?,
        };
        let SalvagePlan { from: latest, skip } =
            plan::latest::salvage_plan(&obs, self.old_host_unreachable).map_err(abort)?;
        let old = self.server(&run.old_master)?;
        let read = match skip {
            Some(why) => Err(why),
            None => self.read_master_binlog(&old, &latest).await,
        };
        let salvage = match read {
            Err(why) => plan::latest::salvage_lost(&old.name, &latest, &why),
            Ok((log, tail)) => self.place_salvage(run, &old, &latest, log, tail).await?,
        };
        let detail = salvage.detail.clone();
        // Nothing saved because there was nothing to save: the step's detail says so, and the
        // critical path is spared a commit (a resumed run simply reads again).
        if plan::latest::record_salvage(&salvage) {
            self.record(RecoveryNote::Salvage(salvage)).await?;
        }
        Ok(detail)
    }

    async fn place_salvage(
        &mut self,
        run: &FailoverRun,
        old: &ServerSpec,
        latest: &BinlogCoord,
        log: MasterLog,
        tail: usize,
    ) -> Result<Salvage, StepError> {
        let fde = log.fde().unwrap_or_default().to_vec();
        let a = assemble(&fde, &[log.events()], |_| false);
        let to = a.last.clone().unwrap_or_else(|| latest.clone());
        let mut notes = Vec::new();
        if a.incomplete_events > 0 || tail > 0 {
            notes.push(format!(
                "a last transaction without its end ({} events, {tail} bytes cut) was left out: \
                 the master never committed it",
                a.incomplete_events
            ));
        }
        let mut s = Salvage {
            saved: true,
            from: Some(latest.clone()),
            to: Some(to.clone()),
            bytes: a.bytes.len() as u64,
            transactions: a.transactions,
            first_gtid: a.first_gtid.as_ref().map(|g| g.to_string()),
            last_gtid: a.last_gtid.as_ref().map(|g| g.to_string()),
            ..Salvage::default()
        };
        if a.transactions == 0 {
            s.detail = format!(
                "dead master {}'s binlog read: nothing after {latest}, the latest replica has \
                 everything it logged{}",
                old.name,
                notes.iter().map(|n| format!("; {n}")).collect::<String>()
            );
            return Ok(s);
        }
        self.guard()?;
        let survivors = self.survivors(run);
        let this = &*self;
        let writes = join_all(survivors.iter().map(|sv| {
            let path = this.workfile("saved", &sv.name);
            let bytes = &a.bytes;
            async move {
                let (h, p) = this.ssh_of(sv);
                let pool = this.ssh()?;
                pool.write_file(&h, p, &path, bytes, FILE_WRITE)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(format!("{}:{path}", sv.name))
            }
        }))
        .await;
        for w in writes {
            match w {
                Ok(c) => s.copies.push(c),
                Err(e) => notes.push(format!("a copy could not be placed: {e}")),
            }
        }
        if s.copies.is_empty() {
            notes.push("no survivor holds a copy: a resumed run cannot use it".into());
        }
        s.detail = format!(
            "saved {} transactions ({} bytes, GTIDs {}..{}) of dead master {} from {latest} to \
             {to}; copies on {}{}",
            a.transactions,
            s.bytes,
            s.first_gtid.as_deref().unwrap_or("-"),
            s.last_gtid.as_deref().unwrap_or("-"),
            old.name,
            s.copies
                .iter()
                .map(|c| c.split(':').next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(", "),
            notes.iter().map(|n| format!("; {n}")).collect::<String>()
        );
        self.salvaged = Some(log);
        Ok(s)
    }

    /// The old master's binlog from `from` to its end: the file `from` names and every later
    /// one, found in master_binlog_dir. Returns the log and the bytes of an incomplete last
    /// event.
    async fn read_master_binlog(
        &self,
        old: &ServerSpec,
        from: &BinlogCoord,
    ) -> Result<(MasterLog, usize), String> {
        let pool = self.ssh()?;
        let (host, port) = self.ssh_of(old);
        let dirs = old
            .master_binlog_dir
            .clone()
            .unwrap_or_else(|| self.group.spec.failover.master_binlog_dir.clone());
        let (base, _) = from
            .file
            .rsplit_once('.')
            .ok_or_else(|| format!("binlog file name {} has no index", from.file))?;
        let dir_list: Vec<String> = dirs
            .split(',')
            .map(|d| shell_quote(d.trim()))
            .filter(|d| d != "''")
            .collect();
        // One round trip on the critical path: find the file, list the directory (later files),
        // then the file's size, its head (the format description event) and the bytes from
        // the position on. Text lines first, then exactly `head` + the rest as binary.
        let f = shell_quote(&from.file);
        let cmd = format!(
            "for d in {dirs_q}; do if [ -f \"$d\"/{f} ]; then p=\"$d\"/{f}; \
             echo \"$d\"; ls -1 \"$d\" | tr '\\n' ' '; echo; stat -c %s \"$p\"; \
             dd if=\"$p\" iflag=count_bytes count=4096 bs=4096 status=none; \
             dd if=\"$p\" iflag=skip_bytes skip={pos} bs=65536 status=none; exit 0; fi; done; \
             echo 'not in master_binlog_dir' >&2; exit 3",
            dirs_q = dir_list.join(" "),
            pos = from.pos
        );
        let out = pool
            .exec(&host, port, &cmd, FILE_READ)
            .await
            .map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!(
                "{} not found in {dirs}: {}",
                from.file,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let (dir, listing, size, body) =
            split_lines3(&out.stdout).ok_or("unexpected output while reading the binlog")?;
        let size: usize = size
            .trim()
            .parse()
            .map_err(|_| format!("bad file size {size:?}"))?;
        let head_len = size.min(4096).min(body.len());
        let (head, data) = body.split_at(head_len);
        let mut log = MasterLog::default();
        let mut tail = log
            .push_binlog(&from.file, head, from.pos, data)
            .map_err(|e| e.to_string())?;
        // Files after the one the latest replica was reading (rare: a rotate it missed).
        let start = from.index().unwrap_or(0);
        let mut later: Vec<BinlogCoord> = listing
            .split_whitespace()
            .filter_map(|n| {
                let (b, i) = n.rsplit_once('.')?;
                (b == base && i.chars().all(|c| c.is_ascii_digit())).then(|| BinlogCoord {
                    file: n.to_string(),
                    pos: 0,
                })
            })
            .filter(|c| c.index().is_some_and(|i| i > start))
            .collect();
        later.sort_by_key(|c| c.index());
        for f in &later {
            let path = format!("{dir}/{}", f.file);
            let data = pool
                .read_range(&host, port, &path, 0, None, FILE_READ)
                .await
                .map_err(|e| e.to_string())?;
            if data.len() < 4 {
                continue;
            }
            tail = log
                .push_binlog(&f.file, &data, 4, &data[4..])
                .map_err(|e| e.to_string())?;
        }
        Ok((log, tail))
    }

    /// The salvaged events: from this executor's memory, or read back from a survivor's copy.
    pub(super) async fn salvaged(&mut self, run: &FailoverRun) -> Result<MasterLog, StepError> {
        let Some(s) = run.recovery.salvage.as_ref().filter(|s| s.transactions > 0) else {
            return Ok(MasterLog::default());
        };
        if let Some(l) = &self.salvaged {
            return Ok(l.clone());
        }
        let mut errors = Vec::new();
        for c in &s.copies {
            let Some((server, path)) = c.split_once(':') else {
                continue;
            };
            let Ok(sv) = self.server(server) else {
                continue;
            };
            let (h, p) = self.ssh_of(&sv);
            let read = async {
                let data = self
                    .ssh()?
                    .read_range(&h, p, path, 0, None, FILE_READ)
                    .await
                    .map_err(|e| e.to_string())?;
                MasterLog::from_assembled(path, &data).map_err(|e| e.to_string())
            };
            match read.await {
                Ok(l) => {
                    self.salvaged = Some(l.clone());
                    return Ok(l);
                }
                Err(e) => errors.push(format!("{server}: {e}")),
            }
        }
        Err(abort(format!(
            "the salvaged binlog ({} transactions) cannot be read from any copy: {}",
            s.transactions,
            errors.join("; ")
        )))
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
        let tmp = format!("{path}.mha-tmp");
        let (h, p) = self.ssh_of(s);
        let pool = self.ssh().map_err(abort)?;
        // One round trip: stdin carries the password (first line, into MYSQL_PWD: never argv)
        // and then the file, which is kept on the host for the record before it is replayed.
        let cmd = format!(
            "IFS= read -r MYSQL_PWD; export MYSQL_PWD; set -o pipefail 2>/dev/null; \
             cat > {t} && mv -f {t} {f} && \
             {} --no-defaults {f} | {} --no-defaults --binary-mode --max-allowed-packet=1073741824 \
             -h {} -P {} -u {}",
            self.client_tool("mysqlbinlog"),
            self.client_tool("mysql"),
            shell_quote(&s.host),
            s.port,
            shell_quote(&self.group.spec.user),
            t = shell_quote(&tmp),
            f = shell_quote(&path),
        );
        let mut input = format!("{}\n", self.password.expose()).into_bytes();
        input.extend_from_slice(&a.bytes);
        let limit = Duration::from_millis(self.group.spec.failover.apply_timeout_ms);
        self.guard()?;
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
