//! `mhactl group add|update|remove|list`: replication groups managed by the cluster.
//!
//! ```text
//! $ mhactl group add -f /var/tmp/mhalab/group.toml
//! group lab added: master db1, MariadbGtid, 3 servers
//! $ mhactl group list
//! GROUP  MASTER  MODE         SEMISYNC  SERVERS
//! lab    db1     MariadbGtid  no        db1,db2,db3
//! ```
//! The leader connects to every server, discovers who is master and how replication is set up,
//! and refuses the group if that is inconsistent (the error lists every problem).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::table::render;
use super::{exit, out, AdminClient};
use crate::api::json::{self, mode_name};
use crate::api::pb::{self, Group, ListGroupsRequest, PutGroupRequest, RemoveGroupRequest};

#[derive(Subcommand, Debug, Clone)]
pub enum GroupCmd {
    /// Register a replication group from a definition file.
    Add(FileArgs),
    /// Replace a group's definition (rediscovers its topology).
    Update(FileArgs),
    /// Stop managing a group.
    Remove(NameArgs),
    /// List groups.
    List(ListArgs),
}

#[derive(Args, Debug, Clone)]
pub struct FileArgs {
    /// Group definition (TOML; see docs/cli.md).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct NameArgs {
    #[arg(long)]
    pub group: String,
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
}

/// Reads and validates a group file into the request (no network).
pub fn build_put(args: &FileArgs) -> Result<PutGroupRequest, String> {
    let text =
        std::fs::read_to_string(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let spec = crate::group_file::parse(&text)
        .map_err(|errs| format!("{}: {}", args.file.display(), errs.join("; ")))?;
    Ok(PutGroupRequest {
        spec: Some(pb::GroupSpec::from(&spec)),
    })
}

/// The name, the master, the mode, semi-sync and the servers of a group as the table shows them.
struct Row<'a> {
    name: &'a str,
    master: &'a str,
    mode: String,
    semisync: bool,
    servers: Vec<&'a str>,
}

fn row(g: &Group) -> Row<'_> {
    let topo = g.topology.as_ref();
    Row {
        name: g.spec.as_ref().map(|s| s.name.as_str()).unwrap_or_default(),
        master: topo.map(|t| t.master.as_str()).unwrap_or_default(),
        mode: topo.map(|t| mode_name(t.mode)).unwrap_or_default(),
        semisync: topo.is_some_and(|t| t.semisync),
        servers: g
            .spec
            .iter()
            .flat_map(|s| s.servers.iter().map(|s| s.name.as_str()))
            .collect(),
    }
}

fn summary(g: &Group) -> String {
    let r = row(g);
    format!(
        "master {}, {}{}, {} servers",
        r.master,
        r.mode,
        if r.semisync { ", semi-sync" } else { "" },
        r.servers.len()
    )
}

pub fn render_list(groups: &[Group]) -> String {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let r = row(g);
            vec![
                r.name.to_string(),
                r.master.to_string(),
                r.mode,
                if r.semisync { "yes" } else { "no" }.into(),
                r.servers.join(","),
            ]
        })
        .collect();
    render(&["GROUP", "MASTER", "MODE", "SEMISYNC", "SERVERS"], &rows)
}

/// One arm per subcommand (add/update, remove, list), each a call and its rendering.
pub async fn execute(client: &AdminClient, cmd: &GroupCmd) -> i32 {
    match cmd {
        GroupCmd::Add(a) | GroupCmd::Update(a) => {
            let req = match build_put(a) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::USAGE;
                }
            };
            let update = matches!(cmd, GroupCmd::Update(_));
            let res = client
                .call(|mut c| {
                    let req = req.clone();
                    async move {
                        if update {
                            c.update_group(req).await
                        } else {
                            c.add_group(req).await
                        }
                    }
                })
                .await;
            match res.map(|r| (r.group, r.warnings)) {
                Ok((Some(g), warnings)) => {
                    let mut text = format!(
                        "group {} {}: {}\n",
                        row(&g).name,
                        if update { "updated" } else { "added" },
                        summary(&g)
                    );
                    for w in warnings {
                        text.push_str(&format!("[warning] {w}\n"));
                    }
                    out(&text);
                    exit::OK
                }
                Ok((None, _)) => {
                    eprintln!("error: bad reply: no group");
                    exit::ERROR
                }
                Err(e) => super::fail(e),
            }
        }
        GroupCmd::Remove(a) => {
            let req = RemoveGroupRequest {
                name: a.group.clone(),
            };
            match client
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.remove_group(req).await }
                })
                .await
            {
                Ok(_) => {
                    out(&format!("group {} removed\n", a.group));
                    exit::OK
                }
                Err(e) => super::fail(e),
            }
        }
        GroupCmd::List(a) => match client
            .call(|mut c| async move { c.list_groups(ListGroupsRequest {}).await })
            .await
        {
            Ok(r) => {
                if a.json {
                    match r
                        .groups
                        .iter()
                        .map(json::group)
                        .collect::<Result<Vec<_>, _>>()
                    {
                        Ok(v) => out(&format!(
                            "{}\n",
                            serde_json::to_string_pretty(&v).expect("json")
                        )),
                        Err(e) => return super::fail(format!("bad reply: {e}")),
                    }
                } else {
                    out(&render_list(&r.groups));
                }
                exit::OK
            }
            Err(e) => super::fail(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_put_reads_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.toml");
        std::fs::write(&f, "name = \"x\"\n").unwrap();
        let e = build_put(&FileArgs { file: f.clone() }).unwrap_err();
        assert!(e.contains("missing field"), "{e}");
        assert!(build_put(&FileArgs {
            file: dir.path().join("nope.toml")
        })
        .is_err());
    }
}
