//! `cluster status` from what the leader already knows: the replicated state and its monitor's
//! latest readings of each replica (monitor/seen.rs), no server read for the call. With a
//! hundred groups, reading every server on every status call would be hundreds of connections
//! and thousands of round trips; the observed view costs none.

use std::time::Duration;

use super::groups::{group_status, GroupLive, ServerLive};
use super::monitor::seen::Seen;
use super::Runtime;
use crate::model::{Health, IoThread};
use crate::state::group::Group;

/// A reading older than this many ping intervals says nothing about now.
const FRESH_INTERVALS: u64 = 3;

/// Each group with its servers as the leader's monitor last saw them.
pub fn observed_view(node: &Runtime, groups: Vec<Group>) -> Vec<GroupLive> {
    groups
        .iter()
        .map(|g| {
            let fresh = Duration::from_millis(
                g.spec
                    .ping
                    .interval_ms
                    .saturating_mul(FRESH_INTERVALS)
                    .max(2_000),
            );
            let servers = g
                .spec
                .servers
                .iter()
                .map(|s| {
                    let address = s.endpoint();
                    if s.name == g.topology.master {
                        master_row(s.name.clone(), address, &g.health.state)
                    } else {
                        replica_row(
                            s.name.clone(),
                            address,
                            node.replicas_seen.get(&g.spec.name, &s.name, fresh),
                        )
                    }
                })
                .collect();
            group_status(node, g, servers, None, true)
        })
        .collect()
}

/// The master as its pings say: nothing read beyond them (read_only and position need a read).
fn master_row(name: String, address: String, health: &Health) -> ServerLive {
    let error = match health {
        Health::Alive => None,
        Health::Suspect { .. } => Some("suspected: pings failing".to_string()),
        Health::UnreachableButAlive { .. } => {
            Some("unreachable from the leader, alive for others".to_string())
        }
        Health::Dead { .. } => Some("dead (corroborated verdict)".to_string()),
    };
    ServerLive {
        name,
        address,
        role: "master".into(),
        read_only: None,
        position: String::new(),
        io_thread: None,
        sql_thread: None,
        seconds_behind: None,
        error,
    }
}

fn replica_row(name: String, address: String, seen: Option<Result<Seen, String>>) -> ServerLive {
    let (role, seen, error) = match seen {
        Some(Ok(s)) => ("replica", Some(s), None),
        Some(Err(why)) => ("unreachable", None, Some(why)),
        None => ("replica", None, Some("no recent reading".to_string())),
    };
    ServerLive {
        name,
        address,
        role: role.into(),
        read_only: None,
        position: String::new(),
        io_thread: seen.as_ref().map(|s| {
            match s.io_thread {
                IoThread::Yes => "Yes",
                IoThread::Connecting => "Connecting",
                IoThread::No => "No",
            }
            .to_string()
        }),
        sql_thread: seen.as_ref().map(|s| s.sql_thread),
        seconds_behind: seen.as_ref().and_then(|s| s.seconds_behind),
        error,
    }
}
