//! Leader-only master monitoring. The supervisor runs one monitor per group while this node is
//! the acting leader (quorum lease fresh) and aborts them the moment it is not: a deposed leader
//! keeps no monitor. Each monitor feeds [`Detector`] with pings, follower votes (ProbeService)
//! and replica IO reports, and commits what it decides (open round, verdict) through Raft before
//! anything may act on it. A new leader restores each group's detector from the replicated
//! health, so an open suspicion round is finished, not restarted.

mod corroboration;
pub mod host_silence;
mod pulses;
pub mod seen;
mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

pub use self::corroboration::probe_master;
use self::corroboration::{spawn_corroboration, RoundAsk};
use self::pulses::PulseBook;
use self::stats::Counters;
pub use self::stats::{CountersSnapshot, MonitorStats};
use super::credentials::{login, password};
use super::peers::voters;
use super::pinger::Pinger;
use crate::adapters::mysql::Login;
use crate::clock::now_ms;
use crate::engine::detector::{bounds, Action, Detector, DetectorConfig, Event};
use crate::model::{Health, Verdict, VerdictKind};
use crate::raft::NodeError;
use crate::runtime::supervisor::{TermTasks, Ticker, Wake};
use crate::runtime::Runtime;
use crate::secret::Secret;
use crate::state::group::{Group, Role};
use crate::state::{Cmd, CmdResult};

const SUPERVISE_EVERY: Duration = Duration::from_millis(50);
/// How long a proposed end of a pause that ran out may take to apply before it is proposed again.
const EXPIRY_RETRY: Duration = Duration::from_secs(2);
/// How many successful pings' round trips bound the next ping's timeout from below.
const RTT_HISTORY: usize = 16;

/// The replicated groups, shared between ticks.
type GroupsAt = Arc<BTreeMap<String, Group>>;

/// What the monitor supervisor needs of the replicated state at one tick (the groups
/// themselves are copied apart, only when an entry was applied).
struct Watch {
    /// Groups whose pause holds now.
    paused: BTreeSet<String>,
    /// Dead groups nothing acted on (no run for the round, none active or failed): a paused
    /// one keeps its monitor, to see the master come back.
    untouched_dead: BTreeSet<String>,
    /// Groups whose pause ran out but is still recorded.
    expired: BTreeSet<String>,
    /// Groups in an online switchover: the run blocks the master's writes and kills its
    /// connections on purpose, and watches every server itself; the group is monitored
    /// again (its new master, or the old one after a roll-back) once the run ends.
    switching: BTreeSet<String>,
}

fn watch_view(c: &crate::state::ClusterState, now: u64) -> Watch {
    let names = |f: &dyn Fn(&crate::state::journal::GroupFailover) -> bool| -> BTreeSet<String> {
        c.failover
            .iter()
            .filter(|(_, x)| f(x))
            .map(|(g, _)| g.clone())
            .collect()
    };
    Watch {
        paused: names(&|f| f.pause_at(now).is_some()),
        untouched_dead: c
            .groups
            .values()
            .filter(|g| match g.health.state {
                Health::Dead { round, .. } => c.dead_round_untouched(&g.spec.name, round),
                _ => false,
            })
            .map(|g| g.spec.name.clone())
            .collect(),
        expired: names(&|f| f.paused.is_some() && f.pause_at(now).is_none()),
        switching: names(&|f| {
            f.active_run
                .and_then(|id| c.runs.get(&id))
                .is_some_and(|r| r.kind == crate::state::journal::RunKind::Switchover)
        }),
    }
}

/// Runs until `stop`: keeps one monitor per group (for its current master) while this node is
/// the acting leader, in the current term; ends pauses that ran out.
pub async fn supervise(node: Arc<Runtime>, stop: watch::Receiver<bool>) {
    let mut ticker = Ticker::new(&node.raft, stop, SUPERVISE_EVERY, Wake::Tick).tolerating_lapses();
    // Keyed by (group, master, paused): a failover's new master gets a new monitor, and so
    // does a pause or a resume (a paused monitor goes on after a Dead verdict; a resumed one
    // starts from the health the resume left).
    // The group's last change is in the key too: a rejoined replica or an updated definition
    // is then asked and read by a monitor that knows it.
    let mut monitors: TermTasks<(String, String, bool, u64)> = TermTasks::new("monitor");
    // Pauses that ran out whose resume this leader proposed (when) and has not seen applied:
    // proposed again after a while if it did not commit.
    let mut expiring: BTreeMap<String, Instant> = BTreeMap::new();
    // The groups as of an applied index: copied again only when it moved (20 ticks a second
    // would otherwise copy every group's spec, topology and verdicts 20 times a second).
    let mut cached: Option<(Option<u64>, GroupsAt)> = None;
    while let Some(lead) = ticker.next().await {
        let applied = node.raft.metrics().last_applied.map(|l| l.index);
        let groups = match &cached {
            Some((at, g)) if *at == applied => g.clone(),
            _ => {
                let g = Arc::new(node.raft.read(|c| c.groups.clone()));
                cached = Some((applied, g.clone()));
                g
            }
        };
        let w = node.raft.read(|c| watch_view(c, now_ms()));
        expiring.retain(|g, at| w.expired.contains(g) && at.elapsed() < EXPIRY_RETRY);
        monitors.retain(lead, |(name, master, p, changed)| {
            groups.get(name).is_some_and(|g| {
                g.topology.master == *master
                    && w.paused.contains(name) == *p
                    && g.updated_at_ms == *changed
                    && !w.switching.contains(name)
            })
        });
        let Some(term) = lead else { continue };
        // Kept through a lapse of the lease; nothing started until it holds again.
        if node.raft.acting_term() != Some(term) {
            continue;
        }
        // A pause that ran out ends as a resume does: a master that died meanwhile is then
        // suspected afresh and failed over, not left dead with its round refused.
        for name in &w.expired {
            if expiring.insert(name.clone(), Instant::now()).is_none() {
                let (node, name) = (node.clone(), name.clone());
                tokio::spawn(async move {
                    tracing::warn!(group = %name, "the pause ran out: automatic failover is on again");
                    commit(&node, term, Cmd::ResumeGroup { group: name }).await;
                });
            }
        }
        for (name, g) in groups.iter() {
            let p = w.paused.contains(name);
            // A Dead master is the failover's, unless the group is paused and nothing acted
            // on the death: then the monitor watches for the master coming back (a planned
            // restart) to close the round.
            let dead = matches!(g.health.state, Health::Dead { .. });
            if dead && !(p && w.untouched_dead.contains(name)) || w.switching.contains(name) {
                continue;
            }
            let key = (name.clone(), g.topology.master.clone(), p, g.updated_at_ms);
            monitors.ensure(key, term, || monitor_group(node.clone(), g.clone(), term));
        }
    }
}

fn detector_config(node: &Runtime, g: &Group) -> DetectorConfig {
    let managers = voters(node);
    DetectorConfig {
        ping_interval_ms: g.spec.ping.interval_ms,
        suspect_interval_ms: g.spec.ping.suspect_interval_ms,
        failure_threshold: g.spec.ping.failure_threshold,
        managers,
        replicas: g
            .topology
            .servers
            .values()
            .filter(|s| s.role == Role::Replica)
            .map(|s| s.name.clone())
            .collect(),
        replica_policy: g.spec.ping.replica_policy,
        corroboration_timeout_ms: (2 * g.spec.ping.interval_ms).max(1500),
    }
}

/// Commits a command only while still the acting leader of `term` (a short lapse of the lease
/// is waited out); false if not committed.
async fn commit(node: &Runtime, term: u64, cmd: Cmd) -> bool {
    match node.raft.propose_in(term, cmd).await {
        Ok(CmdResult::Rejected(reason)) => {
            tracing::info!(%reason, "monitor command not applied");
            false
        }
        Ok(_) => true,
        Err(NodeError::LeadershipLost { .. }) => false,
        Err(e) => {
            tracing::warn!(error = %e, "monitor could not commit");
            false
        }
    }
}

/// Whether the monitor goes on after acting on the detector's decisions.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    /// The verdict is committed (Dead: the failover supervisor takes it from here) or could
    /// not be (leadership lost).
    Stop,
}

/// One group's monitor: the detector plus what feeds it (pinger, sentinel, corroboration) and
/// what it commits, for one master in one term.
struct GroupMonitor {
    node: Arc<Runtime>,
    g: Group,
    term: u64,
    password: Secret,
    counters: Arc<Counters>,
    corroboration_timeout: Duration,
    pinger: Pinger,
    det: Detector,
    tx: mpsc::Sender<Event>,
    rx: mpsc::Receiver<Event>,
    next_ping: Instant,
    /// Round trips of the latest successful pings: a slow master keeps room to answer.
    recent_rtt: std::collections::VecDeque<Duration>,
    /// The open round's corroboration deadline.
    deadline: Option<(u64, Instant)>,
    /// The replicas' latest readings (pulses.rs), for the rounds' replica watches.
    pulses: PulseBook,
    // Aborted with this monitor, so a deposed leader keeps no connection and no SSH warmer.
    _sentinel: AbortOnDrop,
    _warm: Option<AbortOnDrop>,
    _pulse_reader: AbortOnDrop,
}

#[tracing::instrument(skip_all, fields(group = %g.spec.name, master = %g.topology.master, term))]
async fn monitor_group(node: Arc<Runtime>, g: Group, term: u64) {
    let Some(mut m) = GroupMonitor::new(node, g, term) else {
        return;
    };
    tracing::info!(state = ?m.det.health(), "monitor started");
    let mut actions = m.det.start(now_ms());
    loop {
        for a in std::mem::take(&mut actions) {
            if m.act(a).await == Flow::Stop {
                return;
            }
        }
        let before = m.det.health().clone();
        let ev = m.next_event().await;
        actions = m.det.handle(ev);
        m.after_event(&before);
    }
}

impl GroupMonitor {
    fn new(node: Arc<Runtime>, g: Group, term: u64) -> Option<GroupMonitor> {
        let master = g.spec.server(&g.topology.master).cloned()?;
        let password = password(&node.local, &g.spec)
            .map_err(|e| tracing::error!(error = %e, "cannot monitor: password"))
            .ok()?;
        let cfg = detector_config(&node, &g);
        let timeout = Duration::from_millis(g.spec.ping.interval_ms);
        let master_login = login(&g.spec, &master, &password);
        let pinger = Pinger::new(
            master_login.clone(),
            g.spec.ping.ping_type,
            timeout,
            (g.spec.name.clone(), node.id()),
        );
        let det = Detector::new(
            cfg.clone(),
            node.id(),
            node.me.zone.clone(),
            g.health.state.clone(),
            g.health.next_round,
        );
        let (tx, rx) = mpsc::channel::<Event>(64);
        let sentinel = AbortOnDrop(tokio::spawn(sentinel(master_login, timeout, tx.clone())));
        let pulses = PulseBook::default();
        let pulse_reader = AbortOnDrop(tokio::spawn(pulses::keep(
            g.clone(),
            password.clone(),
            timeout,
            pulses.clone(),
            node.replicas_seen.clone(),
        )));
        // Warm SSH sessions to every server: a failover then pays no handshake.
        let warm = match node.ssh.get(&node.local, &g.spec) {
            Ok(pool) => Some(AbortOnDrop(tokio::spawn(
                crate::runtime::ssh_pools::keep_warm(pool, g.spec.clone()),
            ))),
            Err(e) => {
                tracing::warn!(error = %e, "ssh pool unavailable: failover will connect on demand");
                None
            }
        };
        Some(GroupMonitor {
            counters: node.monitor.counters(&g.spec.name),
            corroboration_timeout: Duration::from_millis(cfg.corroboration_timeout_ms),
            node,
            g,
            term,
            password,
            pinger,
            det,
            tx,
            rx,
            next_ping: Instant::now(),
            recent_rtt: std::collections::VecDeque::with_capacity(RTT_HISTORY),
            deadline: None,
            pulses,
            _sentinel: sentinel,
            _warm: warm,
            _pulse_reader: pulse_reader,
        })
    }

    /// Commits in the background (the monitor keeps pinging meanwhile).
    fn commit_later(&self, cmd: Cmd) {
        let (node, term) = (self.node.clone(), self.term);
        tokio::spawn(async move {
            commit(&node, term, cmd).await;
        });
    }

    async fn act(&mut self, a: Action) -> Flow {
        match a {
            Action::Ping { after_ms } => {
                self.next_ping = Instant::now() + Duration::from_millis(after_ms);
                Flow::Continue
            }
            Action::StartCorroboration { round, since_ms } => {
                tracing::warn!(
                    round,
                    "master suspect: corroborating from other zones and replicas"
                );
                self.deadline = Some((round, Instant::now() + self.corroboration_timeout));
                // The round's majority is of the voters asked now (probe_from_followers asks
                // the current membership), not of those when this monitor started.
                self.det.set_managers(voters(&self.node));
                self.commit_later(Cmd::OpenSuspicion {
                    group: self.g.spec.name.clone(),
                    round,
                    since_ms,
                });
                spawn_corroboration(
                    self.node.clone(),
                    self.g.clone(),
                    self.password.clone(),
                    RoundAsk {
                        round,
                        tx: self.tx.clone(),
                        window: self.corroboration_timeout,
                    },
                    self.counters.clone(),
                    self.pulses.clone(),
                );
                Flow::Continue
            }
            Action::Verdict(v) => self.verdict(v).await,
        }
    }

    async fn verdict(&mut self, v: Verdict) -> Flow {
        self.counters.verdicts.fetch_add(1, Ordering::Relaxed);
        self.node
            .metrics
            .verdict(&self.g.spec.name, v.kind == crate::model::VerdictKind::Dead);
        let votes: Vec<String> = v
            .votes
            .iter()
            .map(|x| format!("{}:{}", x.manager, if x.reachable { "up" } else { "down" }))
            .collect();
        let dead = v.kind == VerdictKind::Dead;
        let (group, master) = (self.g.spec.name.clone(), self.g.topology.master.clone());
        let (round, reason, votes) = (v.round, v.reason.clone(), votes.join(", "));
        self.deadline = None;
        // A Dead verdict begins its automatic failover in the same entry where every member
        // can apply that (state/verdict_begins.rs): one commit less before the first step.
        let begins = dead
            && super::features::lacking(
                &self.node,
                crate::state::verdict_begins::FEATURE_VERDICT_BEGINS,
            )
            .is_none();
        let record = if begins {
            Cmd::RecordVerdictAndBegin {
                group: group.clone(),
                verdict: Box::new(v),
            }
        } else {
            Cmd::RecordVerdict {
                group: group.clone(),
                verdict: Box::new(v),
            }
        };
        let committed = commit(&self.node, self.term, record).await;
        // One line an operator can grep for, whole: group, master, round, votes, reason. Said
        // only once the verdict is committed, since only then does a failover follow from it.
        let paused = self.node.raft.read(|c| {
            c.failover
                .get(&group)
                .is_some_and(|f| f.pause_at(now_ms()).is_some())
        });
        match (dead, committed) {
            (true, true) if paused => tracing::error!(
                %group, %master, round, %votes, %reason,
                "MASTER DEAD: group {group}, master {master} (round {round}, votes {votes}): \
                 {reason}; verdict committed; the group is PAUSED: no automatic failover \
                 (mhactl resume, or mhactl failover by hand)"
            ),
            (true, true) => tracing::error!(
                %group, %master, round, %votes, %reason,
                "MASTER DEAD: group {group}, master {master} (round {round}, votes {votes}): \
                 {reason}; verdict committed, failover follows"
            ),
            (true, false) => tracing::warn!(
                %group, %master, round, %votes, %reason,
                "master {master} of group {group} looks dead (round {round}) but the verdict \
                 was not committed (no longer the acting leader): the next leader decides"
            ),
            (false, _) => tracing::warn!(
                %group, %master, round, %votes, %reason,
                "master {master} of group {group} unreachable but alive (round {round}, votes \
                 {votes}): {reason}; no failover"
            ),
        }
        if committed && begins {
            crate::runtime::failover::say_auto_begin(&self.node, &group, &master, round);
        }
        if !committed || dead {
            return Flow::Stop;
        }
        Flow::Continue
    }

    /// The next ping result, corroboration answer or corroboration timeout.
    async fn next_event(&mut self) -> Event {
        let deadline = self.deadline;
        tokio::select! {
            _ = sleep_until(self.next_ping) => {
                // The insert ping writes to the master: only with the lease (a lapse in this
                // term is waited out; past it this monitor is stopped).
                if self.node.raft.guard_within(self.term, crate::raft::LAPSE_GRACE).await.is_err() {
                    std::future::pending::<()>().await;
                }
                self.counters.pings.fetch_add(1, Ordering::Relaxed);
                self.pinger.set_timeout(self.ping_timeout());
                let result = self.pinger.ping().await;
                // Stamped when the answer (or the timeout) came, not when the ping was sent: a
                // verdict decided on a ping that timed out is that much later than the ping's
                // start, and its time must say so.
                let at_ms = now_ms();
                match result {
                    Ok(rtt) => {
                        self.node.metrics.ping(&self.g.spec.name, rtt);
                        if self.recent_rtt.len() == RTT_HISTORY {
                            self.recent_rtt.pop_front();
                        }
                        self.recent_rtt.push_back(rtt);
                        Event::PingOk { at_ms }
                    }
                    Err(e) => {
                        if !e.proves_alive() {
                            self.counters.ping_failures.fetch_add(1, Ordering::Relaxed);
                            self.node.metrics.ping_failed(&self.g.spec.name);
                        }
                        tracing::debug!(error = %e, "ping failed");
                        Event::PingFailed { at_ms, proves_alive: e.proves_alive(), error: e.to_string() }
                    }
                }
            }
            Some(ev) = self.rx.recv() => ev,
            _ = async { sleep_until(deadline.expect("guarded").1).await }, if deadline.is_some() => {
                self.deadline = None;
                Event::CorroborationTimeout { round: deadline.expect("guarded").0, at_ms: now_ms() }
            }
        }
    }

    /// The next ping's bound (engine::detector::bounds): half the interval while the master
    /// answers, the suspect interval once it is suspect, never under 8 × its slowest recent
    /// answer.
    fn ping_timeout(&self) -> Duration {
        let slowest = self.recent_rtt.iter().max().map(|d| d.as_millis() as u64);
        let p = &self.g.spec.ping;
        Duration::from_millis(bounds::ping_timeout_ms(
            p.interval_ms,
            p.suspect_interval_ms,
            matches!(self.det.health(), Health::Suspect { .. }),
            slowest,
        ))
    }

    /// A suspicion the master answered away is closed in the replicated state too. So is a
    /// Dead round of a paused group whose master is back (the state refuses it otherwise).
    fn after_event(&mut self, before: &Health) {
        if let (
            Health::Suspect { round, .. }
            | Health::UnreachableButAlive { round, .. }
            | Health::Dead { round, .. },
            Health::Alive,
        ) = (before, self.det.health())
        {
            tracing::info!(round, "master answers again: suspicion closed");
            self.deadline = None;
            self.commit_later(Cmd::CloseSuspicion {
                group: self.g.spec.name.clone(),
                round: *round,
            });
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The early signal: a connection parked in a long `SELECT SLEEP()` returns with an error the
/// moment mysqld dies (its socket is closed by the kernel: EOF/RST), long before the next ping.
/// It only *suspects*: a paused or partitioned master produces no signal, and a Dead verdict
/// still needs the pings, the other zones and the replicas.
async fn sentinel(login: Login, timeout: Duration, tx: mpsc::Sender<Event>) {
    loop {
        match login.connect(timeout).await {
            Ok(mut s) => {
                // 30 s sleeps in a loop on one connection: if this monitor is aborted (leader
                // change), the server's thread lingers at most one sleep, not a day.
                s.set_timeout(Duration::from_secs(40));
                loop {
                    if let Err(e) = s.park(Duration::from_secs(30)).await {
                        tracing::info!(error = %e, "monitoring connection lost");
                        if tx
                            .send(Event::ConnectionLost { at_ms: now_ms() })
                            .await
                            .is_err()
                        {
                            return;
                        }
                        break;
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "sentinel connect failed"),
        }
        // While the master is down, retry quietly; the pings do the counting.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::group::tests::put;
    use crate::state::ClusterState;

    fn state_with(names: &[&str]) -> ClusterState {
        let mut s = ClusterState::default();
        for n in names {
            s.apply(&put(n), 1);
        }
        s
    }

    fn pause(group: &str, for_ms: Option<u64>) -> Cmd {
        Cmd::PauseGroup {
            group: group.into(),
            by: "alice (operator)".into(),
            reason: String::new(),
            for_ms,
        }
    }

    /// A pause that ran out is the supervisor's to end (it proposes the resume); one that holds,
    /// or has no end, is not.
    #[test]
    fn a_pause_that_ran_out_is_seen_to_end() {
        let mut s = state_with(&["a", "b", "c"]);
        s.apply(&pause("a", Some(1_000)), 100);
        s.apply(&pause("b", None), 100);
        let w = watch_view(&s, 500);
        assert_eq!(w.paused, ["a", "b"].map(String::from).into());
        assert!(w.expired.is_empty());
        let w = watch_view(&s, 1_100);
        assert_eq!(w.paused, ["b"].map(String::from).into());
        assert_eq!(w.expired, ["a"].map(String::from).into());
    }
}
