//! `mhactl rejoin`: an old master back as a replica of the current master.
//! Without `--yes` it only checks and says what it would do; nothing is changed.
//!
//! ```text
//! $ mhactl rejoin --group lab --server db1
//! db1: no transaction the master db2 lacks (GTID 0-1-57 ⊆ 0-2-62)
//! would: set read_only on db1, point it at db2 by GTID, start replication, wait until it has 0-2-62 with its threads running, and enter it into the topology
//! checked only: add --yes to rejoin db1
//! $ mhactl rejoin --group lab --server db1 --yes
//! db1: no transaction the master db2 lacks (GTID 0-1-57 ⊆ 0-2-62)
//! db1: gtid_slave_pos = 0-1-57
//! db1: replicating from db2 by GTID
//! db1: has 0-2-62 and its threads run
//! db1 is in the topology again, a replica of db2
//! ```

use clap::Args;

use super::{exit, fail, out, AdminClient};
use crate::api::pb::RejoinRequest;

#[derive(Args, Debug, Clone)]
pub struct RejoinArgs {
    /// The replication group (its name in the group file).
    #[arg(long)]
    pub group: String,
    /// The server to bring back (a server of the group file the topology left: an old master).
    #[arg(long)]
    pub server: String,
    /// Rejoin; without it, only check and say what would be done.
    #[arg(long)]
    pub yes: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn build_request(a: &RejoinArgs) -> RejoinRequest {
    RejoinRequest {
        group: a.group.clone(),
        server: a.server.clone(),
        check_only: !a.yes,
    }
}

/// How long mhactl waits for the leader's answer: a rejoin waits up to the group's
/// `replica_timeout_ms` (60 s by default) for the server to catch up, after two connects.
const WAIT: std::time::Duration = std::time::Duration::from_secs(180);

pub async fn execute(client: &AdminClient, a: &RejoinArgs) -> i32 {
    let req = build_request(a);
    let client = match client.with_endpoints(client.endpoints().to_vec(), WAIT) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let r = client
        .call(|mut c| {
            let req = req.clone();
            async move { c.rejoin_server(req).await }
        })
        .await;
    match r {
        Ok(r) if a.json => {
            let v = serde_json::json!({
                "version": 1,
                "group": a.group,
                "server": a.server,
                "rejoined": r.rejoined,
                "lines": r.lines,
            });
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&v).expect("json")
            ));
            exit::OK
        }
        Ok(r) => {
            for l in &r.lines {
                out(&format!("{l}\n"));
            }
            if !r.rejoined {
                out(&format!("checked only: add --yes to rejoin {}\n", a.server));
            }
            exit::OK
        }
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_acts() {
        let a = RejoinArgs {
            group: "lab".into(),
            server: "db1".into(),
            yes: false,
            json: false,
        };
        assert!(build_request(&a).check_only);
        assert!(!build_request(&RejoinArgs { yes: true, ..a }).check_only);
    }
}
