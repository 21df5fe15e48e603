//! What a manager counts and times, for Prometheus (server/http.rs serves it on
//! `--metrics-listen`): instruments recorded as things happen (pings, votes, verdicts, failover
//! steps, leader changes), and gauges refreshed at each scrape from Raft's metrics, the
//! replicated state (the same on every manager) and this node's monitor observations (the
//! leader's). Names follow Prometheus' conventions: prefix `mha_raft_`, base units in the name,
//! `_total` on counters, labels of low cardinality (group, server, step, kind).

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use super::Runtime;
use crate::model::{Health, IoThread};
use crate::state::journal::{RunKind, RunState, StepName};

type Labels = Vec<(String, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// A peer heard from within this long counts as reachable.
const PEER_FRESH: Duration = Duration::from_secs(3);
/// A replica reading older than this is not exported (the monitor stopped: not the leader).
const SEEN_FRESH: Duration = Duration::from_secs(10);

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Pings answer in milliseconds; a hung master's take up to the ping timeout.
fn ping_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

/// Failover steps take milliseconds (a commit) to a minute (a relay-log apply).
fn step_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    /// One scrape at a time: the refreshed gauges are cleared and set again.
    scrape: Mutex<()>,
    ping_seconds: Histograms,
    ping_failures: Family<Labels, Counter>,
    probe_votes: Family<Labels, Counter>,
    verdicts: Family<Labels, Counter>,
    step_seconds: Histograms,
    leader_changes: Counter,
    raft_term: Gauge,
    raft_is_leader: Gauge,
    raft_last_log_index: Gauge,
    raft_applied_index: Gauge,
    raft_peer_reachable: Family<Labels, Gauge>,
    group_health: Family<Labels, Gauge>,
    group_paused: Family<Labels, Gauge>,
    group_failover_blocked: Family<Labels, Gauge>,
    server_is_master: Family<Labels, Gauge>,
    replica_lag: Family<Labels, Gauge>,
    replica_io_running: Family<Labels, Gauge>,
    replica_sql_running: Family<Labels, Gauge>,
    replica_up: Family<Labels, Gauge>,
    failover_runs: Family<Labels, Counter>,
    failover_runs_active: Family<Labels, Gauge>,
    last_failover: Family<Labels, Gauge<f64, AtomicU64>>,
    build_info: Family<Labels, Gauge>,
    mysql_errors: Family<Labels, Counter>,
    ssh_errors: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("mha_raft");
        let m = Metrics {
            registry: Registry::default(),
            scrape: Mutex::new(()),
            ping_seconds: Family::new_with_constructor(ping_buckets),
            ping_failures: Family::default(),
            probe_votes: Family::default(),
            verdicts: Family::default(),
            step_seconds: Family::new_with_constructor(step_buckets),
            leader_changes: Counter::default(),
            raft_term: Gauge::default(),
            raft_is_leader: Gauge::default(),
            raft_last_log_index: Gauge::default(),
            raft_applied_index: Gauge::default(),
            raft_peer_reachable: Family::default(),
            group_health: Family::default(),
            group_paused: Family::default(),
            group_failover_blocked: Family::default(),
            server_is_master: Family::default(),
            replica_lag: Family::default(),
            replica_io_running: Family::default(),
            replica_sql_running: Family::default(),
            replica_up: Family::default(),
            failover_runs: Family::default(),
            failover_runs_active: Family::default(),
            last_failover: Family::default(),
            build_info: Family::default(),
            mysql_errors: Family::default(),
            ssh_errors: Family::default(),
        };
        r.register(
            "build_info",
            "The manager's version and git commit (value 1)",
            m.build_info.clone(),
        );
        r.register(
            "raft_term",
            "This manager's current Raft term",
            m.raft_term.clone(),
        );
        r.register(
            "raft_is_leader",
            "1 while this manager is the acting leader (leader with a fresh quorum lease)",
            m.raft_is_leader.clone(),
        );
        r.register(
            "raft_last_log_index",
            "Index of the last entry in this manager's Raft log",
            m.raft_last_log_index.clone(),
        );
        r.register(
            "raft_applied_index",
            "Index of the last entry this manager applied",
            m.raft_applied_index.clone(),
        );
        r.register(
            "raft_leader_changes",
            "Leader changes this manager saw (a new leader, or none any more)",
            m.leader_changes.clone(),
        );
        r.register(
            "raft_peer_reachable",
            "On the acting leader: 1 when the peer answered it within 3 s",
            m.raft_peer_reachable.clone(),
        );
        r.register(
            "group_health",
            "The group's committed master health, one series per state (1 for the current one)",
            m.group_health.clone(),
        );
        r.register(
            "group_paused",
            "1 while automatic failover of the group is paused (mhactl pause)",
            m.group_paused.clone(),
        );
        r.register(
            "group_failover_blocked",
            "1 while a failed run blocks automatic failover until mhactl failover ack",
            m.group_failover_blocked.clone(),
        );
        r.register(
            "server_is_master",
            "1 for the group's master in the committed topology, 0 for its replicas",
            m.server_is_master.clone(),
        );
        r.register_with_unit(
            "replica_lag",
            "Seconds_Behind_Master of each replica, as the leader's monitor last read it",
            Unit::Seconds,
            m.replica_lag.clone(),
        );
        r.register(
            "replica_io_running",
            "1 when the replica's IO thread ran at the leader's last reading",
            m.replica_io_running.clone(),
        );
        r.register(
            "replica_up",
            "1 when this manager's latest reading of the replica succeeded (the leader reads \
             every replica once per ping interval)",
            m.replica_up.clone(),
        );
        r.register(
            "replica_sql_running",
            "1 when the replica's SQL thread ran at the leader's last reading",
            m.replica_sql_running.clone(),
        );
        r.register_with_unit(
            "ping_duration",
            "Round trip of the leader's health-check pings of each group's master",
            Unit::Seconds,
            m.ping_seconds.clone(),
        );
        r.register(
            "ping_failures",
            "Failed health-check pings of each group's master",
            m.ping_failures.clone(),
        );
        r.register(
            "probe_votes",
            "Other managers' answers when asked to probe a suspect master (vote: up, down)",
            m.probe_votes.clone(),
        );
        r.register(
            "verdicts",
            "Suspicion rounds ended by a verdict (kind: dead, unreachable_but_alive)",
            m.verdicts.clone(),
        );
        r.register(
            "failover_runs",
            "Failover and switchover runs that ended, from the replicated journal (kind: auto, \
             manual, switchover; outcome: completed, failed)",
            m.failover_runs.clone(),
        );
        r.register(
            "failover_runs_active",
            "1 while a failover or switchover run of the group is under way",
            m.failover_runs_active.clone(),
        );
        r.register_with_unit(
            "last_failover_timestamp",
            "When the group's last run that changed its master ended (Unix time)",
            Unit::Seconds,
            m.last_failover.clone(),
        );
        r.register_with_unit(
            "failover_step_duration",
            "Duration of each failover or switchover step this manager ran",
            Unit::Seconds,
            m.step_seconds.clone(),
        );
        r.register(
            "mysql_errors",
            "Failed MySQL calls of this manager (connect, query, statement) by server endpoint \
             and kind: connect, timeout, server, protocol",
            m.mysql_errors.clone(),
        );
        r.register(
            "ssh_errors",
            "Failed SSH calls of this manager by host and kind: connect, timeout, auth, \
             host_key, key, channel, config",
            m.ssh_errors.clone(),
        );
        Metrics { registry: r, ..m }
    }

    pub fn ping(&self, group: &str, rtt: Duration) {
        self.ping_seconds
            .get_or_create(&labels(&[("group", group)]))
            .observe(rtt.as_secs_f64());
    }

    pub fn ping_failed(&self, group: &str) {
        self.ping_failures
            .get_or_create(&labels(&[("group", group)]))
            .inc();
    }

    pub fn vote(&self, group: &str, reachable: bool) {
        let vote = if reachable { "up" } else { "down" };
        self.probe_votes
            .get_or_create(&labels(&[("group", group), ("vote", vote)]))
            .inc();
    }

    pub fn verdict(&self, group: &str, dead: bool) {
        let kind = if dead {
            "dead"
        } else {
            "unreachable_but_alive"
        };
        self.verdicts
            .get_or_create(&labels(&[("group", group), ("kind", kind)]))
            .inc();
    }

    /// A step that ended (done or failed) after `took`, acted here or delegated from here.
    pub fn step(&self, kind: RunKind, step: StepName, took: Duration) {
        // The journal's own name of the step (snake_case, as `failover history --json`).
        let name = serde_json::to_value(step)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.step_seconds
            .get_or_create(&labels(&[("kind", kind_word(kind)), ("step", &name)]))
            .observe(took.as_secs_f64());
    }

    pub fn leader_changed(&self) {
        self.leader_changes.inc();
    }

    /// The Prometheus text exposition of everything, refreshed from `node` first.
    pub fn render(&self, node: &Runtime) -> String {
        // A panic in an earlier scrape must not end all later ones.
        let _one = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.refresh(node);
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String");
        out
    }

    fn refresh(&self, node: &Runtime) {
        self.build_info
            .get_or_create(&labels(&[
                ("version", env!("CARGO_PKG_VERSION")),
                ("commit", crate::telemetry::GIT_COMMIT),
            ]))
            .set(1);
        self.call_errors();
        let m = node.raft.metrics();
        let acting = node.raft.is_acting_leader();
        self.raft_term.set(m.current_term as i64);
        self.raft_is_leader.set(acting as i64);
        self.raft_last_log_index
            .set(m.last_log_index.unwrap_or(0) as i64);
        self.raft_applied_index
            .set(m.last_applied.map(|l| l.index).unwrap_or(0) as i64);
        self.raft_peer_reachable.clear();
        // Only the leader calls every peer: on a follower "not heard" means nothing.
        for (id, _) in m.membership_config.membership().nodes() {
            if !acting || *id == node.id() {
                continue;
            }
            let fresh = node
                .raft
                .network()
                .stats()
                .since_last_heard(*id)
                .is_some_and(|d| d < PEER_FRESH);
            self.raft_peer_reachable
                .get_or_create(&labels(&[("peer", &id.to_string())]))
                .set(fresh as i64);
        }
        for f in [
            &self.group_health,
            &self.group_paused,
            &self.group_failover_blocked,
            &self.server_is_master,
            &self.replica_lag,
            &self.replica_io_running,
            &self.replica_sql_running,
            &self.replica_up,
            &self.failover_runs_active,
        ] {
            f.clear();
        }
        self.failover_runs.clear();
        self.last_failover.clear();
        let now = crate::clock::now_ms();
        node.raft.read(|c| {
            for g in c.groups.values() {
                let name = g.spec.name.as_str();
                let current = health_word(&g.health.state);
                for state in ["alive", "suspect", "unreachable_but_alive", "dead"] {
                    self.group_health
                        .get_or_create(&labels(&[("group", name), ("state", state)]))
                        .set((state == current) as i64);
                }
                let f = c.failover.get(name);
                self.failover_runs_active
                    .get_or_create(&labels(&[("group", name)]))
                    .set(f.is_some_and(|f| f.active_run.is_some()) as i64);
                self.group_paused
                    .get_or_create(&labels(&[("group", name)]))
                    .set(f.is_some_and(|f| f.pause_at(now).is_some()) as i64);
                self.group_failover_blocked
                    .get_or_create(&labels(&[("group", name)]))
                    .set(f.is_some_and(|f| f.blocked.is_some()) as i64);
                for s in g.topology.servers.keys() {
                    self.server_is_master
                        .get_or_create(&labels(&[("group", name), ("server", s)]))
                        .set((*s == g.topology.master) as i64);
                }
            }
            let mut last: std::collections::BTreeMap<&str, u64> = Default::default();
            // The runs the bounded history dropped (state/history.rs) still count: with the
            // ended runs it holds, a counter that never goes down.
            for (group, f) in &c.failover {
                for p in &f.pruned {
                    let outcome = if p.completed { "completed" } else { "failed" };
                    self.failover_runs
                        .get_or_create(&labels(&[
                            ("group", group),
                            ("kind", kind_word(p.kind)),
                            ("outcome", outcome),
                        ]))
                        .inc_by(p.count);
                }
            }
            for r in c.runs.values() {
                // Ended runs only (a running one is counted when it ends).
                let (outcome, ended) = match &r.state {
                    RunState::Completed { at_ms } => ("completed", *at_ms),
                    RunState::Failed { at_ms, .. } => ("failed", *at_ms),
                    RunState::Running => continue,
                };
                self.failover_runs
                    .get_or_create(&labels(&[
                        ("group", &r.group),
                        ("kind", kind_word(r.kind)),
                        ("outcome", outcome),
                    ]))
                    .inc();
                if outcome == "completed" {
                    let e = last.entry(r.group.as_str()).or_default();
                    *e = (*e).max(ended);
                }
            }
            for (g, at) in last {
                self.last_failover
                    .get_or_create(&labels(&[("group", g)]))
                    .set(at as f64 / 1000.0);
            }
        });
        for (group, server, seen) in node.replicas_seen.all(SEEN_FRESH) {
            let l = labels(&[("group", &group), ("server", &server)]);
            self.replica_up.get_or_create(&l).set(seen.is_ok() as i64);
            let Ok(seen) = seen else { continue };
            if let Some(lag) = seen.seconds_behind {
                self.replica_lag.get_or_create(&l).set(lag as i64);
            }
            self.replica_io_running
                .get_or_create(&l)
                .set((seen.io_thread == IoThread::Yes) as i64);
            self.replica_sql_running
                .get_or_create(&l)
                .set(seen.sql_thread as i64);
        }
    }
}

impl Metrics {
    /// The adapters' counts of failed calls, brought into the counters (which only grow, as
    /// the counts do).
    fn call_errors(&self) {
        use crate::adapters::call_errors::{snapshot, Service};
        for (service, endpoint, kind, n) in snapshot() {
            let (family, key) = match service {
                Service::Mysql => (&self.mysql_errors, "endpoint"),
                Service::Ssh => (&self.ssh_errors, "host"),
            };
            let c = family.get_or_create(&labels(&[(key, &endpoint), ("kind", kind)]));
            c.inc_by(n.saturating_sub(c.get()));
        }
    }
}

fn kind_word(k: RunKind) -> &'static str {
    match k {
        RunKind::Auto => "auto",
        RunKind::Manual => "manual",
        RunKind::Switchover => "switchover",
    }
}

pub fn health_word(h: &Health) -> &'static str {
    match h {
        Health::Alive => "alive",
        Health::Suspect { .. } => "suspect",
        Health::UnreachableButAlive { .. } => "unreachable_but_alive",
        Health::Dead { .. } => "dead",
    }
}
