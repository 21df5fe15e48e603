//! `mhactl cluster init`: bootstrap a cluster whose nodes were started without
//! `initial_members`. Sent to ONE node (the first endpoint); refused by a node that already
//! belongs to a cluster, so running it twice cannot fork anything.
//!
//! ```text
//! $ mhactl --endpoints 127.0.0.1:7101 cluster init --members 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103
//! initialized; members:
//! ID  ADDRESS         KIND
//! 1   127.0.0.1:7101  voter
//! ...
//! ```

use clap::Args;

use super::table::render;
use super::{exit, AdminClient};
use crate::config::{parse_members, ConfigError};
use crate::proto::admin::{InitClusterRequest, InitMember, MemberInfo};

#[derive(Args, Debug, Clone)]
pub struct InitArgs {
    /// Initial voters as id=host:port,... (must include the node you send this to). Empty: that
    /// node alone; add the others with `mhactl member add`.
    #[arg(long, value_delimiter = ',')]
    pub members: Vec<String>,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn build_request(args: &InitArgs) -> Result<InitClusterRequest, ConfigError> {
    let members = parse_members(&args.members)?;
    Ok(InitClusterRequest {
        members: members
            .into_iter()
            .map(|(id, addr)| InitMember { id, addr })
            .collect(),
    })
}

pub fn render_members(members: &[MemberInfo]) -> String {
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.addr.clone(),
                if m.zone.is_empty() {
                    "-".into()
                } else {
                    m.zone.clone()
                },
                m.kind.clone(),
            ]
        })
        .collect();
    render(&["ID", "ADDRESS", "ZONE", "KIND"], &rows)
}

/// The members as `--json` shows them (schema version 1).
pub fn members_json(members: &[MemberInfo]) -> serde_json::Value {
    members
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.id,
                "addr": m.addr,
                "zone": Some(&m.zone).filter(|z| !z.is_empty()),
                "kind": m.kind,
            })
        })
        .collect()
}

pub async fn execute(client: &AdminClient, args: &InitArgs) -> i32 {
    let req = match build_request(args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: --members: {e}");
            return exit::USAGE;
        }
    };
    // Only the first endpoint: init targets one specific node, never "whichever answers".
    let first = client
        .with_endpoints(
            vec![client.endpoints()[0].clone()],
            std::time::Duration::from_secs(10),
        )
        .expect("one endpoint");
    match first
        .call_any(|mut c| {
            let req = req.clone();
            async move { c.init_cluster(req).await }
        })
        .await
    {
        Ok(r) if args.json => {
            let v = serde_json::json!({
                "schema": 1,
                "initialized": true,
                "members": members_json(&r.members),
            });
            super::out(&format!("{v:#}\n"));
            exit::OK
        }
        Ok(r) => {
            super::out(&format!(
                "initialized; members:\n{}",
                render_members(&r.members)
            ));
            exit::OK
        }
        Err(e) => super::fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_members_table_driven() {
        let cases: Vec<(Vec<&str>, Result<usize, ()>)> = vec![
            (vec![], Ok(0)),
            (vec!["1=a:1"], Ok(1)),
            (vec!["1=a:1", "2=b:2"], Ok(2)),
            (vec!["1=a:1", "1=b:2"], Err(())),
            (vec!["1=nope"], Err(())),
        ];
        for (members, want) in cases {
            let args = InitArgs {
                members: members.iter().map(|s| s.to_string()).collect(),
                json: false,
            };
            let got = build_request(&args)
                .map(|r| r.members.len())
                .map_err(|_| ());
            assert_eq!(got, want, "{members:?}");
        }
    }
}
