//! A run's work files on the DB hosts (salvaged binlog copies, diffs, the files replayed): how
//! they are named, which ones a run may have left and on which hosts, and what becomes of them.
//! Phase 5 removes them once the run succeeded — except on a replica phase 4 could not recover,
//! whose files its manual recovery needs; a failed run keeps them all and its journal says where.
//!
//! Every file of run `id` of group `g` is `<remote_workdir>/mha-raft-<g>-run<id>-<what>-<server>
//! .binlog` on that server's host (`what`: saved, diff, apply), written through `<name>.mha-tmp`.
//! Only names of that shape are ever removed, whatever a journal entry says.

use crate::state::journal::{FailoverRun, StepName, StepState};

/// What a work file holds: a copy of the dead master's salvaged binlog (phase 3.2), a server's
/// diff (phase 3.4), the events replayed on a server (phases 3.5 and 4).
pub const KINDS: [&str; 3] = ["saved", "diff", "apply"];

/// The suffix of the temporary name a work file is written under (adapters::ssh::remote).
pub const TMP_SUFFIX: &str = ".mha-tmp";

/// The file name every work file of the run starts with.
pub fn prefix(group: &str, run: u64) -> String {
    format!("mha-raft-{group}-run{run}-")
}

/// `<workdir>/mha-raft-<group>-run<id>-<what>-<server>.binlog`: the server's name keeps hosts
/// that share a filesystem apart.
pub fn path(workdir: &str, group: &str, run: u64, what: &str, server: &str) -> String {
    format!(
        "{}/{}{what}-{server}.binlog",
        workdir.trim_end_matches('/'),
        prefix(group, run)
    )
}

/// Whether `path` is a work file of this run (or its temporary name): an absolute path whose
/// file name is the run's prefix, a kind, and ends in `.binlog`, with no `..` on the way. Nothing else
/// is ever removed.
pub fn is_work_file(path: &str, group: &str, run: u64) -> bool {
    let path = path.strip_suffix(TMP_SUFFIX).unwrap_or(path);
    let Some((dir, name)) = path.rsplit_once('/') else {
        return false;
    };
    path.starts_with('/')
        && !dir.split('/').any(|c| c == "..")
        && name.strip_prefix(&prefix(group, run)).is_some_and(|rest| {
            KINDS.iter().any(|k| rest.starts_with(&format!("{k}-"))) && rest.ends_with(".binlog")
        })
}

/// The work files one host may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFiles {
    /// The server whose host holds them.
    pub server: String,
    pub paths: Vec<String>,
}

/// What phase 5 does with the run's work files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Removed (each path with its temporary name).
    pub remove: Vec<HostFiles>,
    /// Kept: on replicas phase 4 did not recover (their manual recovery needs them).
    pub keep: Vec<HostFiles>,
}

/// Whether the run may have left work files: the journal records a salvage with transactions
/// (copies placed; the new master replays it), a diff placed, or a step that writes them (3.2,
/// 3.4) was interrupted or resumed — an interrupted attempt may have written files it did not
/// live to journal.
pub fn may_have_files(run: &FailoverRun) -> bool {
    let r = &run.recovery;
    let salvaged = r
        .salvage
        .as_ref()
        .is_some_and(|s| s.transactions > 0 || !s.copies.is_empty());
    let diffs = r.diffs.values().any(|d| !d.path.is_empty());
    let interrupted = run.steps.iter().any(|s| {
        matches!(s.name, StepName::SaveMasterBinlog | StepName::GenerateDiffs)
            && match &s.state {
                StepState::Pending | StepState::Skipped { .. } => false,
                StepState::Done { attempts, .. } => *attempts > 1,
                StepState::Running { .. } | StepState::Failed { .. } => true,
            }
    });
    salvaged || diffs || interrupted
}

/// Every work file the run may have left, by host: for each survivor (in order) the three
/// names, then any other path the journal recorded for it (a salvage copy, a diff), each with
/// its temporary name; the journal's servers that are not survivors come last. Empty when the
/// run wrote none ([`may_have_files`]).
pub fn files(run: &FailoverRun, workdir: &str, survivors: &[String]) -> Vec<HostFiles> {
    if !may_have_files(run) {
        return Vec::new();
    }
    let mut recorded: Vec<(String, String)> = Vec::new();
    if let Some(s) = &run.recovery.salvage {
        recorded.extend(s.copies.iter().filter_map(|c| {
            c.split_once(':')
                .map(|(server, path)| (server.to_string(), path.to_string()))
        }));
    }
    recorded.extend(
        run.recovery
            .diffs
            .iter()
            .filter(|(_, d)| !d.path.is_empty())
            .map(|(server, d)| (server.clone(), d.path.clone())),
    );
    let mut servers: Vec<String> = survivors.to_vec();
    for (server, _) in &recorded {
        if !servers.contains(server) {
            servers.push(server.clone());
        }
    }
    servers
        .into_iter()
        .map(|server| {
            let mut paths: Vec<String> = Vec::new();
            let names = KINDS
                .iter()
                .map(|what| path(workdir, &run.group, run.id, what, &server))
                .chain(
                    recorded
                        .iter()
                        .filter(|(s, _)| *s == server)
                        .map(|(_, p)| p.clone()),
                )
                .filter(|p| is_work_file(p, &run.group, run.id));
            for p in names {
                for p in [p.clone(), format!("{p}{TMP_SUFFIX}")] {
                    if !paths.contains(&p) {
                        paths.push(p);
                    }
                }
            }
            HostFiles { server, paths }
        })
        .filter(|h| !h.paths.is_empty())
        .collect()
}

/// The replicas phase 4 reported it could not recover.
pub fn failed_replicas(run: &FailoverRun) -> Vec<String> {
    run.steps
        .iter()
        .find_map(|s| match &s.state {
            StepState::Done {
                failed_replicas, ..
            } if s.name == StepName::ReplicasRecovery => Some(failed_replicas.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Phase 5's decision, at the end of a run that succeeded: every work file goes, except those
/// on the replicas phase 4 did not recover.
pub fn cleanup(run: &FailoverRun, workdir: &str, survivors: &[String]) -> Cleanup {
    let failed = failed_replicas(run);
    let (keep, remove) = files(run, workdir, survivors)
        .into_iter()
        .partition(|h| failed.contains(&h.server));
    Cleanup { remove, keep }
}

/// "/var/tmp/mha-raft-g-run3-* on db2, db3": where the files are, shortly (one pattern per
/// directory).
pub fn locations(hosts: &[HostFiles], group: &str, run: u64) -> String {
    let mut dirs: Vec<(String, Vec<String>)> = Vec::new();
    for h in hosts {
        for p in &h.paths {
            let dir = p.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            match dirs.iter_mut().find(|(d, _)| d == dir) {
                Some((_, servers)) if servers.contains(&h.server) => {}
                Some((_, servers)) => servers.push(h.server.clone()),
                None => dirs.push((dir.to_string(), vec![h.server.clone()])),
            }
        }
    }
    dirs.iter()
        .map(|(d, servers)| format!("{d}/{}* on {}", prefix(group, run), servers.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Phase 5's line: what was removed, what could not be (`failures`: server and why; best
/// effort, never a failure of the run) and what was kept for whom. None when there was nothing.
pub fn cleanup_line(
    plan: &Cleanup,
    failures: &[(String, String)],
    group: &str,
    run: u64,
) -> Option<String> {
    if plan.remove.is_empty() && plan.keep.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    let (failed, removed): (Vec<HostFiles>, Vec<HostFiles>) = plan
        .remove
        .iter()
        .cloned()
        .partition(|h| failures.iter().any(|(s, _)| *s == h.server));
    if !removed.is_empty() {
        parts.push(format!(
            "work files removed: {}",
            locations(&removed, group, run)
        ));
    }
    for (server, why) in failures {
        let left: Vec<HostFiles> = failed
            .iter()
            .filter(|h| h.server == *server)
            .cloned()
            .collect();
        parts.push(format!(
            "work files NOT removed ({why}): left at {}; remove them by hand",
            locations(&left, group, run)
        ));
    }
    if !plan.keep.is_empty() {
        parts.push(format!(
            "work files kept for the manual recovery of {}: {}",
            plan.keep
                .iter()
                .map(|h| h.server.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            locations(&plan.keep, group, run)
        ));
    }
    Some(parts.join("; "))
}

/// What a failed run's journal adds to the failed step: where its work files stay (kept for
/// inspection and manual recovery). None when it wrote none.
pub fn kept_note(run: &FailoverRun, workdir: &str, survivors: &[String]) -> Option<String> {
    let hosts = files(run, workdir, survivors);
    (!hosts.is_empty()).then(|| {
        format!(
            "this run's work files (salvaged binlog, diffs) are kept on the DB hosts: {}",
            locations(&hosts, &run.group, run.id)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::journal::{RunKind, StepReport};
    use crate::state::recovery::{DiffFile, Salvage};

    fn run() -> FailoverRun {
        FailoverRun::new(3, 2, RunKind::Auto, "g", "db1", None, 0)
    }

    fn survivors() -> Vec<String> {
        vec!["db2".into(), "db3".into()]
    }

    fn done(run: &mut FailoverRun, step: StepName, attempts: u32, report: StepReport) {
        let s = run.steps.iter_mut().find(|s| s.name == step).unwrap();
        s.state = StepState::Done {
            term: 1,
            node: 1,
            started_at_ms: 0,
            finished_at_ms: 1,
            detail: report.detail,
            attempts,
            statement: None,
            failed_replicas: report.failed_replicas,
        };
    }

    /// A file/position run that saved the binlog on both survivors and placed a diff on db3.
    fn salvaged_run() -> FailoverRun {
        let mut r = run();
        r.recovery.salvage = Some(Salvage {
            saved: true,
            transactions: 20,
            copies: vec![
                "db2:/var/tmp/mha-raft-g-run3-saved-db2.binlog".into(),
                "db3:/var/tmp/mha-raft-g-run3-saved-db3.binlog".into(),
            ],
            ..Salvage::default()
        });
        r.recovery.diffs.insert(
            "db3".into(),
            DiffFile {
                path: "/var/tmp/mha-raft-g-run3-diff-db3.binlog".into(),
                transactions: 40,
                ..DiffFile::default()
            },
        );
        done(&mut r, StepName::SaveMasterBinlog, 1, "saved".into());
        done(&mut r, StepName::GenerateDiffs, 1, "placed".into());
        r
    }

    #[test]
    fn names() {
        assert_eq!(
            path("/var/tmp/", "g", 3, "diff", "db2"),
            "/var/tmp/mha-raft-g-run3-diff-db2.binlog"
        );
        assert!(is_work_file(
            "/var/tmp/mha-raft-g-run3-diff-db2.binlog",
            "g",
            3
        ));
        assert!(is_work_file(
            "/var/tmp/mha-raft-g-run3-diff-db2.binlog.mha-tmp",
            "g",
            3
        ));
        for not in [
            "/var/tmp/mha-raft-g-run31-diff-db2.binlog",
            "/var/tmp/mha-raft-h-run3-diff-db2.binlog",
            "/var/tmp/mha-raft-g-run3-diff-db2.binlog.bak",
            "/var/tmp/mha-raft-g-run3-other-db2.binlog",
            "mha-raft-g-run3-diff-db2.binlog",
            "/var/lib/mysql/../../var/tmp/mha-raft-g-run3-diff-db2.binlog",
            "/var/lib/mysql/mysql-bin.000001",
            "/",
            "",
        ] {
            assert!(!is_work_file(not, "g", 3), "{not}");
        }
    }

    /// Which files and when: none for a run that wrote none (GTID, nothing salvaged); for one
    /// that salvaged, every survivor's three names (the journaled ones included) with their
    /// temporary names; an interrupted or resumed 3.2 / 3.4 counts as having written.
    #[test]
    fn which_files() {
        let mut r = run();
        assert!(!may_have_files(&r));
        assert_eq!(files(&r, "/var/tmp", &survivors()), vec![]);
        done(
            &mut r,
            StepName::SaveMasterBinlog,
            1,
            "nothing after mysql-bin.000002:120".into(),
        );
        assert!(!may_have_files(&r), "read, nothing to save: no file");
        done(&mut r, StepName::SaveMasterBinlog, 2, "resumed".into());
        assert!(may_have_files(&r), "a resumed 3.2 may have written copies");
        let mut r = run();
        r.steps[3].state = StepState::Failed {
            term: 1,
            node: 1,
            finished_at_ms: 1,
            detail: "x".into(),
        };
        assert!(may_have_files(&r), "a 3.2 that failed may have written");

        let r = salvaged_run();
        let f = files(&r, "/var/tmp", &survivors());
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].server, "db3");
        let t = "/var/tmp/mha-raft-g-run3-";
        assert_eq!(
            f[1].paths,
            [
                format!("{t}saved-db3.binlog"),
                format!("{t}saved-db3.binlog.mha-tmp"),
                format!("{t}diff-db3.binlog"),
                format!("{t}diff-db3.binlog.mha-tmp"),
                format!("{t}apply-db3.binlog"),
                format!("{t}apply-db3.binlog.mha-tmp"),
            ]
        );
    }

    /// The journal's paths are used (a workdir changed since is still cleaned), but only names
    /// of this run's shape: a forged entry naming another file is never removed.
    #[test]
    fn journaled_paths_only_of_the_runs_shape() {
        let mut r = salvaged_run();
        let s = r.recovery.salvage.as_mut().unwrap();
        s.copies = vec![
            "db2:/srv/old/mha-raft-g-run3-saved-db2.binlog".into(),
            "db2:/etc/shadow".into(),
            "db4:/var/lib/mysql/ibdata1".into(),
            "db4:/srv/old/mha-raft-g-run3-saved-db4.binlog".into(),
        ];
        let f = files(&r, "/var/tmp", &survivors());
        let all: Vec<&String> = f.iter().flat_map(|h| &h.paths).collect();
        assert!(all.contains(&&"/srv/old/mha-raft-g-run3-saved-db2.binlog".to_string()));
        assert!(!all
            .iter()
            .any(|p| p.contains("shadow") || p.contains("ibdata")));
        assert_eq!(f.last().unwrap().server, "db4", "a journaled non-survivor");
        assert_eq!(
            locations(&f, "g", 3),
            "/var/tmp/mha-raft-g-run3-* on db2, db3, db4; /srv/old/mha-raft-g-run3-* on db2, db4"
        );
    }

    /// At the end of a run that succeeded everything goes; a replica phase 4 did not recover
    /// keeps its files, and phase 5's line says where; a failed removal is reported, not fatal.
    #[test]
    fn cleanup_decision_and_report() {
        let mut r = salvaged_run();
        done(
            &mut r,
            StepName::ReplicasRecovery,
            1,
            "all recovered".into(),
        );
        let c = cleanup(&r, "/var/tmp", &survivors());
        assert!(c.keep.is_empty());
        assert_eq!(
            c.remove
                .iter()
                .map(|h| h.server.as_str())
                .collect::<Vec<_>>(),
            ["db2", "db3"]
        );
        assert_eq!(
            cleanup_line(&c, &[], "g", 3).unwrap(),
            "work files removed: /var/tmp/mha-raft-g-run3-* on db2, db3"
        );
        assert_eq!(
            cleanup_line(&c, &[("db3".into(), "db3: cannot connect".into())], "g", 3).unwrap(),
            "work files removed: /var/tmp/mha-raft-g-run3-* on db2; work files NOT removed \
             (db3: cannot connect): left at /var/tmp/mha-raft-g-run3-* on db3; remove them by hand"
        );

        done(
            &mut r,
            StepName::ReplicasRecovery,
            1,
            StepReport {
                detail: "partially failed".into(),
                failed_replicas: vec!["db3".into()],
                ..StepReport::default()
            },
        );
        let c = cleanup(&r, "/var/tmp", &survivors());
        assert_eq!(c.remove.len(), 1);
        assert_eq!(c.keep[0].server, "db3");
        assert_eq!(
            cleanup_line(&c, &[], "g", 3).unwrap(),
            "work files removed: /var/tmp/mha-raft-g-run3-* on db2; work files kept for the \
             manual recovery of db3: /var/tmp/mha-raft-g-run3-* on db3"
        );

        let gtid = run();
        let c = cleanup(&gtid, "/var/tmp", &survivors());
        assert_eq!(c, Cleanup::default());
        assert_eq!(cleanup_line(&c, &[], "g", 3), None);
    }

    /// A failed run keeps everything and says where.
    #[test]
    fn failed_run_note() {
        assert_eq!(kept_note(&run(), "/var/tmp", &survivors()), None);
        assert_eq!(
            kept_note(&salvaged_run(), "/srv/mha", &survivors()).unwrap(),
            "this run's work files (salvaged binlog, diffs) are kept on the DB hosts: \
             /srv/mha/mha-raft-g-run3-* on db2, db3; /var/tmp/mha-raft-g-run3-* on db2, db3"
        );
    }
}
