//! Phase 3.2, saving the dead master's binlog: over SSH, from the latest replica's read
//! position to its end (MHA does it for file/position groups; here for GTID groups too),
//! parsed, cut to whole transactions, and a copy placed on every survivor.

use std::sync::Arc;

use futures::future::join_all;
use tracing::Instrument;

use super::apply::{FILE_READ, FILE_WRITE};
use super::{abort, RunCtx, StepError, StepResult};
use crate::adapters::binlog::{assemble, MasterLog};
use crate::adapters::ssh::{remote, SshPool};
use crate::engine::failover as plan;
use crate::model::{BinlogCoord, Observations, SalvagePlan};
use crate::runtime::error::RuntimeError;
use crate::state::group::ServerSpec;
use crate::state::journal::FailoverRun;
use crate::state::recovery::{RecoveryNote, Salvage};

impl RunCtx {
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
        let ahead = self
            .salvage_ahead
            .take()
            .filter(|a| a.step + 2 == self.steps_run && a.from == latest);
        let when = if ahead.is_some() && skip.is_none() {
            " (read as soon as phase 2 had taken the old master out)"
        } else {
            ""
        };
        let read = match (skip, ahead) {
            (Some(why), _) => Err(why),
            // Phase 2 of this executor began the same read once the old master was taken out.
            (None, Some(a)) => a.result().await,
            (None, _) => match self.binlog_source(&old) {
                Ok(src) => read_master_binlog(src, &latest)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
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
        Ok(format!("{detail}{when}"))
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
        self.guard().await?;
        let survivors = self.survivors(run);
        let this = &*self;
        let writes = join_all(survivors.iter().map(|sv| {
            let path = this.workfile("saved", &sv.name);
            let bytes = &a.bytes;
            async move {
                let (h, p) = this.ssh_of(sv);
                let pool = this.ssh().map_err(|e| e.to_string())?;
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

    /// Where the old master's binlog is read from: the SSH pool, its host and port, and
    /// master_binlog_dir.
    pub(super) fn binlog_source(&self, old: &ServerSpec) -> Result<BinlogSource, RuntimeError> {
        let (host, port) = self.ssh_of(old);
        Ok(BinlogSource {
            pool: self.ssh.clone()?,
            host,
            port,
            dirs: old
                .master_binlog_dir
                .clone()
                .unwrap_or_else(|| self.group.spec.failover.master_binlog_dir.clone()),
        })
    }

    /// Right after phase 2 took the old master out (its host reachable): the read of its binlog
    /// from the latest replica's read position, begun in the background so that it runs while
    /// phase 2's end and phase 3.1 are committed; 3.2 of this executor takes it. Reading
    /// changes nothing on the host, and the result is used only once 3.2's begin is committed.
    pub(super) fn read_binlog_ahead(&mut self, run: &FailoverRun, obs: &Observations) {
        let Ok(SalvagePlan { from, skip: None }) =
            plan::latest::salvage_plan(obs, self.old_host_unreachable)
        else {
            return;
        };
        if run.recovery.salvage.is_some() {
            return;
        }
        let Ok(old) = self.server(&run.old_master) else {
            return;
        };
        let Ok(src) = self.binlog_source(&old) else {
            return;
        };
        let at = from.clone();
        let task = tokio::spawn(
            async move {
                let t = std::time::Instant::now();
                let r = read_master_binlog(src, &at)
                    .await
                    .map_err(|e| e.to_string());
                tracing::debug!(
                    elapsed_us = t.elapsed().as_micros() as u64,
                    ok = r.is_ok(),
                    "dead master's binlog read ahead of phase 3.2"
                );
                r
            }
            .instrument(tracing::Span::current()),
        );
        self.salvage_ahead = Some(SalvageAhead {
            step: self.steps_run,
            from,
            task,
        });
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
                    .ssh()
                    .map_err(|e| e.to_string())?
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
}

/// The old master's binlog from `from` to its end: the file `from` names and every later
/// one, found in master_binlog_dir. Returns the log and the bytes of an incomplete last
/// event.
async fn read_master_binlog(
    src: BinlogSource,
    from: &BinlogCoord,
) -> Result<(MasterLog, usize), RuntimeError> {
    let BinlogSource {
        pool,
        host,
        port,
        dirs,
    } = src;
    let (base, _) = from.file.rsplit_once('.').ok_or_else(|| {
        RuntimeError::Host(format!("binlog file name {} has no index", from.file))
    })?;
    // One round trip on the critical path: find the file, list the directory (later files),
    // then the file's size, its head (the format description event) and the bytes from
    // the position on.
    let cmd = remote::read_binlog(&dirs, &from.file, from.pos);
    let out = pool.exec(&host, port, &cmd, FILE_READ).await?;
    if !out.success() {
        return Err(RuntimeError::Host(format!(
            "{} not found in {dirs}: {}",
            from.file,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let read = remote::parse_binlog_read(&out.stdout)
        .ok_or_else(|| RuntimeError::Host("unexpected output while reading the binlog".into()))?;
    let mut log = MasterLog::default();
    let mut tail = log.push_binlog(&from.file, read.head, from.pos, read.rest)?;
    let dir = read.dir;
    // Files after the one the latest replica was reading (rare: a rotate it missed).
    let start = from.index().unwrap_or(0);
    let mut later: Vec<BinlogCoord> = read
        .listing
        .iter()
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
            .await?;
        if data.len() < 4 {
            continue;
        }
        tail = log.push_binlog(&f.file, &data, 4, &data[4..])?;
    }
    Ok((log, tail))
}

/// Where a dead master's binlog is read from.
pub(super) struct BinlogSource {
    pool: Arc<SshPool>,
    host: String,
    port: u16,
    dirs: String,
}

/// The read of the dead master's binlog phase 2 began (in its step `step`), from `from`.
pub(super) struct SalvageAhead {
    pub(super) step: u64,
    from: BinlogCoord,
    task: tokio::task::JoinHandle<Result<(MasterLog, usize), String>>,
}

impl SalvageAhead {
    async fn result(mut self) -> Result<(MasterLog, usize), String> {
        (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(format!("the read stopped: {e}")))
    }
}

impl Drop for SalvageAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}
