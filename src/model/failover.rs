//! Facts a failover step gathers and the decisions the failover planner (`engine::failover`)
//! takes on them: value types only. The runtime produces the facts (what the old master did
//! when it was knocked on, how far each survivor applied), the planner turns them into these
//! decisions, the runtime acts on them through its adapters.

use serde::{Deserialize, Serialize};

use super::server::BinlogCoord;

/// What the new master, and every replica after it, must reach: the planner's decision of
/// phase 3.3. GTID groups: the set merged from every survivor; binlog file/position groups:
/// the end of the salvaged binlog, or the latest replica's read position.
///
/// Stored as its text (a GTID set, or `file:pos`), as every build before the typed journal
/// wrote it: managers of both builds replicate the same log during a rolling upgrade. The text
/// says by itself which it is ([`Target::from_text`]); the tagged form (`{"kind": "gtid",
/// "at": …}`) is read too, so a later build may switch to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A GTID set in the group's flavour (MariaDB `0-1-57,1-3-9`, MySQL `uuid:1-5:7`); may be
    /// empty (nothing to wait for).
    Gtid(String),
    Coord(BinlogCoord),
}

/// Which kind of [`Target`] a group's replication mode calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Gtid,
    Coord,
}

impl Target {
    pub fn kind(&self) -> TargetKind {
        match self {
            Target::Gtid(_) => TargetKind::Gtid,
            Target::Coord(_) => TargetKind::Coord,
        }
    }

    /// A target from its text. Binlog coordinates are a file name ending in `.` and digits, a
    /// ':' and a position (`mysql-bin.000042:1234`); no GTID set looks like that (MariaDB sets
    /// hold no ':', a MySQL set's ':' follows a UUID, which holds no '.'), so the text alone
    /// tells which it is.
    pub fn from_text(text: &str) -> Target {
        match text.parse::<BinlogCoord>() {
            Ok(c) if c.index().is_some() => Target::Coord(c),
            _ => Target::Gtid(text.to_string()),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(tag = "kind", content = "at", rename_all = "snake_case")]
        enum Tagged {
            Gtid(String),
            Coord(BinlogCoord),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Tagged(Tagged),
            Text(String),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Tagged(Tagged::Gtid(s)) => Target::Gtid(s),
            Stored::Tagged(Tagged::Coord(c)) => Target::Coord(c),
            Stored::Text(s) => Target::from_text(&s),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Gtid(set) => f.write_str(set),
            Target::Coord(c) => c.fmt(f),
        }
    }
}

/// Phase 1's knock on the old master's mysqld (a fresh connection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterProbe {
    /// It accepted the connection: it is up.
    Answered,
    /// It refused with an error only a running server gives (too many connections, access
    /// denied...).
    ProvesAlive(String),
    /// No connection: the error.
    Unreachable(String),
}

/// What the old master's mysqld did when phase 2 knocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OldMysqld {
    /// It answered and was fenced by SQL (read_only, client connections killed).
    Fenced,
    /// Connection refused: nothing listens, it is down.
    Down,
    /// No answer in time (hung, paused, cut off), or fencing failed: it could come back.
    Silent,
}

/// MHA's `--command` for master_ip_failover_script and shutdown_script in phase 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookCommand {
    /// The old master's host cannot be reached over SSH (shutdown_script: power it off).
    Stop,
    /// SSH reaches the host (shutdown_script: stop the mysqld that does not answer).
    StopSsh,
}

impl HookCommand {
    pub fn as_str(&self) -> &'static str {
        match self {
            HookCommand::Stop => "stop",
            HookCommand::StopSsh => "stopssh",
        }
    }
}

impl std::fmt::Display for HookCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Phase 2 on the old master's host, decided before anything is known of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostFence {
    /// No SSH for this group (why): the host counts as unreachable.
    NoSsh(String),
    /// Fence the VIP on it over SSH: kept, answering resets, until the new master holds it
    /// (this also proves the host reachable).
    FenceVip,
    /// No VIP configured: only find out whether SSH reaches it.
    CheckSsh,
}

/// Phase 2's hooks, decided on what the knocks found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FencePlan {
    /// master_ip_failover_script --command=… (when one is configured).
    pub ip_failover: Option<HookCommand>,
    /// shutdown_script --command=… (run if configured; otherwise the journal says what could
    /// not be done).
    pub shutdown: Option<HookCommand>,
    /// Phase 3.2 does not try to read the dead master's binlog over SSH again.
    pub host_unreachable: bool,
}

/// Phase 3.2: where reading the dead master's binlog starts, and whether it is tried at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalvagePlan {
    /// The latest replica's read position.
    pub from: BinlogCoord,
    /// Why the binlog is not read (its host was unreachable in phase 2).
    pub skip: Option<String>,
}

/// A survivor at phase 3.4, after its SQL thread finished its relay log and stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SurvivorRelay {
    /// An earlier attempt placed its diff: only its read position (if it still reports one)
    /// counts when the latest replica is looked for.
    Placed { read: Option<BinlogCoord> },
    /// Applied up to `exec`, read up to `read`: it needs a diff from `exec` on.
    Finished {
        exec: BinlogCoord,
        read: BinlogCoord,
    },
}

/// Phase 3.4's plan: whose relay logs to read, and what each survivor lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffPlan {
    /// The furthest read position among the survivors.
    pub latest: BinlogCoord,
    /// The oldest applied position of a survivor that needs a diff: how far back the relay
    /// logs must reach.
    pub oldest: BinlogCoord,
    /// The latest replicas, in group order, with their read position: relay-log sources to try.
    pub sources: Vec<(String, BinlogCoord)>,
    /// The survivors that need a diff, in group order, with their applied position.
    pub pending: Vec<(String, BinlogCoord)>,
}

/// One survivor's diff: from its applied position to the end of the source's relay logs (then
/// the salvaged binlog), or why it cannot be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffRange {
    pub server: String,
    pub from: BinlogCoord,
    /// The source's relay logs do not reach back to `from` (MHA's lack_relay_log).
    pub lack_relay_log: Option<String>,
}

/// Where a repointed replica starts on the new master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaStart {
    /// MariaDB master_use_gtid=slave_pos, MySQL auto-position.
    AutoPosition,
    /// The new master's binlog coordinates after its apply (file/position groups).
    Coord(BinlogCoord),
}

/// Phase 4's plan, the same for every replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicasPlan {
    pub start: ReplicaStart,
    /// What each replica must reach before it counts as recovered (None: nothing to wait for).
    pub goal: Option<Target>,
}

/// What phase 4 does on one replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaAction {
    /// It already replicates from the new master with a running IO thread: left alone.
    LeaveAlone,
    /// Repointed (after applying its diff when `apply_diff`).
    Repoint { apply_diff: bool },
}

/// Phase 4's result. MHA: 0 = every replica recovered, 10 = "recovery on slave partially
/// failed" (the new master serves writes either way, so the step is done).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicasOutcome {
    AllRecovered,
    PartiallyFailed { failed: Vec<String> },
}

/// A finished run as a whole, in MHA's exit-code terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Still running.
    Running,
    /// 0: completed successfully.
    Completed,
    /// 10: completed, but the recovery of some replica failed.
    PartiallyFailed,
    /// 1: failed (why).
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target is stored as its text and read back as the target it was: the GTID sets of
    /// both flavours (a MySQL one holds ':') stay GTID sets, binlog coordinates become
    /// coordinates; the tagged form reads the same.
    #[test]
    fn target_storage_as_text() {
        let coord = Target::Coord(BinlogCoord {
            file: "mysql-bin.000042".into(),
            pos: 1234,
        });
        let cases = [
            Target::Gtid("0-1-57,1-3-9".into()),
            Target::Gtid("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9:12".into()),
            Target::Gtid("3e11fa47-71ca-11e1-9e33-c80aa9429562:5".into()),
            Target::Gtid(String::new()),
            coord.clone(),
        ];
        for t in cases {
            let stored = serde_json::to_value(&t).unwrap();
            assert_eq!(stored, serde_json::Value::String(t.to_string()));
            assert_eq!(serde_json::from_value::<Target>(stored).unwrap(), t, "{t}");
        }
        let tagged =
            serde_json::json!({"kind": "coord", "at": {"file": "mysql-bin.000042", "pos": 1234}});
        assert_eq!(serde_json::from_value::<Target>(tagged).unwrap(), coord);
        assert_eq!(coord.to_string(), "mysql-bin.000042:1234");
    }
}
