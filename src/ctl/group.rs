//! `mhactl group add|update|remove|list|show` and `group server add|remove`: replication
//! groups managed by the cluster. A change to a stored group shows its diff first and needs
//! `--yes` (what it rediscovers and commits replaces the group).
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

use super::confirm::{confirm, refused};
use super::table::render;
use super::{exit, out, AdminClient};
use crate::api::json::{self, mode_name};
use crate::api::pb::{self, Group, ListGroupsRequest, PutGroupRequest, RemoveGroupRequest};
use crate::group_render::{self, diff};

#[derive(Subcommand, Debug, Clone)]
pub enum GroupCmd {
    /// Register a replication group from a definition file.
    Add(FileArgs),
    /// Replace a group's definition (rediscovers its topology): shows the diff against the
    /// stored one, applies it with --yes.
    Update(FileArgs),
    /// Stop managing a group (its servers are not touched). Asks on a terminal; needs --yes
    /// otherwise.
    Remove(RemoveArgs),
    /// List groups.
    List(ListArgs),
    /// The stored group as the group file that states it (defaults written out).
    Show(NameArgs),
    /// Add or remove one server of a group (MHA's masterha_conf_host).
    #[command(subcommand)]
    Server(ServerCmd),
}

#[derive(Args, Debug, Clone)]
pub struct FileArgs {
    /// Group definition (TOML; see docs/cli.md).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Apply (update only; without it the diff is shown and nothing changes).
    #[arg(long)]
    pub yes: bool,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ServerCmd {
    /// Add a server to a group's definition (the diff is shown; applied with --yes).
    Add(ServerAddArgs),
    /// Remove a server from a group's definition (not its master).
    Remove(ServerRemoveArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ServerAddArgs {
    /// The replication group (its name in the group file).
    #[arg(long)]
    pub group: String,
    /// The server (its name in the group file, e.g. db3).
    #[arg(long)]
    pub name: String,
    /// The server's MySQL host (address or name).
    #[arg(long)]
    pub host: String,
    /// The server's MySQL port.
    #[arg(long, default_value_t = 3306)]
    pub port: u16,
    /// MHA's candidate_master: preferred as the new master.
    #[arg(long)]
    pub candidate_master: bool,
    /// MHA's no_master: never promoted.
    #[arg(long)]
    pub no_master: bool,
    /// MHA's ignore_fail: unreachable or broken, it is left out of a failover instead of stopping it.
    #[arg(long)]
    pub ignore_fail: bool,
    /// SSH host of the server when it differs from --host.
    #[arg(long)]
    pub ssh_host: Option<String>,
    /// SSH port of the server (default 22).
    #[arg(long)]
    pub ssh_port: Option<u16>,
    /// Where this server's binary logs are (MHA's master_binlog_dir), when it differs from the group's.
    #[arg(long)]
    pub master_binlog_dir: Option<String>,
    /// Apply (without it the change is shown and nothing changes).
    #[arg(long)]
    pub yes: bool,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ServerRemoveArgs {
    /// The replication group (its name in the group file).
    #[arg(long)]
    pub group: String,
    /// The server (its name in the group file, e.g. db3).
    #[arg(long)]
    pub name: String,
    /// Apply (without it the change is shown and nothing changes).
    #[arg(long)]
    pub yes: bool,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct NameArgs {
    /// The replication group (its name in the group file).
    #[arg(long)]
    pub group: String,
    /// Print the stored group as JSON (schema version 1, docs/cli.md) instead of a group file.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RemoveArgs {
    /// The replication group (its name in the group file).
    #[arg(long)]
    pub group: String,
    /// Confirm: monitoring and automatic failover of the group end.
    #[arg(long)]
    pub yes: bool,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
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

/// The stored group `name`.
async fn stored_group(client: &AdminClient, name: &str) -> Result<Group, String> {
    let r = client
        .call(|mut c| async move { c.list_groups(ListGroupsRequest {}).await })
        .await
        .map_err(|e| e.to_string())?;
    r.groups
        .into_iter()
        .find(|g| g.spec.as_ref().is_some_and(|s| s.name == name))
        .ok_or_else(|| format!("no group named {name}"))
}

/// The stored spec of group `name`, and its master.
async fn stored_with_master(
    client: &AdminClient,
    name: &str,
) -> Result<(pb::GroupSpec, String), String> {
    let g = stored_group(client, name).await?;
    let master = g.topology.map(|t| t.master).unwrap_or_default();
    Ok((g.spec.unwrap_or_default(), master))
}

async fn stored(client: &AdminClient, name: &str) -> Result<pb::GroupSpec, String> {
    stored_with_master(client, name).await.map(|(s, _)| s)
}

/// Shows what changes from `old` to `new`; sends it with `yes`. A change is never sent
/// unseen: without `--yes` the diff is all that happens.
async fn change(
    client: &AdminClient,
    old: &pb::GroupSpec,
    new: pb::GroupSpec,
    yes: bool,
    json: bool,
) -> i32 {
    let (old_text, new_text) = match (
        group_render::render_wire(old),
        group_render::validate_wire(&new).and_then(|_| group_render::render_wire(&new)),
    ) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) => return super::fail(format!("the stored group: {e}")),
        (_, Err(e)) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let d = diff(&old_text, &new_text);
    if json && !yes {
        let v = serde_json::json!({
            "schema": 1,
            "group": new.name,
            "changed": !d.is_empty(),
            "diff": d,
            "applied": false,
        });
        out(&format!("{v:#}\n"));
        return exit::OK;
    }
    if json {
        return put(client, PutGroupRequest { spec: Some(new) }, true, json).await;
    }
    match (d.is_empty(), yes) {
        // The same definition sent again rediscovers the topology (after a repair by hand).
        (true, true) => out(&format!(
            "group {}: definition unchanged; the leader rediscovers the topology\n",
            new.name
        )),
        (true, false) => {
            out(&format!(
                "group {}: no change (--yes rediscovers the topology all the same)\n",
                new.name
            ));
            return exit::OK;
        }
        (false, _) => out(&format!("group {} would change:\n{d}", new.name)),
    }
    if !yes {
        out("nothing changed: add --yes to apply (the leader rediscovers the topology first)\n");
        return exit::OK;
    }
    put(client, PutGroupRequest { spec: Some(new) }, true, json).await
}

/// Adds (or, `update`, replaces) a group and says what the leader found.
async fn put(client: &AdminClient, req: PutGroupRequest, update: bool, json: bool) -> i32 {
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
        Ok((Some(g), warnings)) if json => match json::group(&g) {
            Ok(v) => {
                let v = serde_json::json!({
                    "schema": 1,
                    "action": if update { "updated" } else { "added" },
                    "group": v,
                    "warnings": warnings,
                });
                out(&format!("{v:#}\n"));
                exit::OK
            }
            Err(e) => super::fail(format!("bad reply: {e}")),
        },
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

/// `group server add|remove`: the stored spec with one server more or less (never the master).
fn with_server(
    mut spec: pb::GroupSpec,
    master: &str,
    cmd: &ServerCmd,
) -> Result<pb::GroupSpec, String> {
    match cmd {
        ServerCmd::Add(a) => {
            if spec.servers.iter().any(|s| s.name == a.name) {
                return Err(format!(
                    "group {} already has a server {}",
                    spec.name, a.name
                ));
            }
            spec.servers.push(pb::ServerSpec {
                name: a.name.clone(),
                host: a.host.clone(),
                port: a.port.into(),
                candidate_master: a.candidate_master,
                no_master: a.no_master,
                ssh_host: a.ssh_host.clone(),
                ssh_port: a.ssh_port.map(u32::from),
                master_binlog_dir: a.master_binlog_dir.clone(),
                ignore_fail: a.ignore_fail,
            });
        }
        ServerCmd::Remove(a) => {
            if a.name == master {
                return Err(format!(
                    "{} is the master of group {}: fail over or switch over first",
                    a.name, spec.name
                ));
            }
            let before = spec.servers.len();
            spec.servers.retain(|s| s.name != a.name);
            if spec.servers.len() == before {
                return Err(format!("group {} has no server {}", spec.name, a.name));
            }
        }
    }
    group_render::validate_wire(&spec)?;
    Ok(spec)
}

/// One arm per subcommand, each a call and its rendering.
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
            let GroupCmd::Update(_) = cmd else {
                return put(client, req, false, a.json).await;
            };
            let Some(new) = req.spec.clone() else {
                return super::fail("the file's group could not be read back");
            };
            match stored(client, &new.name).await {
                Ok(old) => change(client, &old, new, a.yes, a.json).await,
                Err(e) => super::fail(e),
            }
        }
        GroupCmd::Show(a) if a.json => match stored_group(client, &a.group).await {
            Ok(g) => match json::group(&g) {
                Ok(v) => {
                    out(&format!("{v:#}\n"));
                    exit::OK
                }
                Err(e) => super::fail(format!("bad reply: {e}")),
            },
            Err(e) => super::fail(e),
        },
        GroupCmd::Show(a) => match stored(client, &a.group).await {
            Ok(spec) => match group_render::render_wire(&spec) {
                Ok(text) => {
                    out(&text);
                    exit::OK
                }
                Err(e) => super::fail(format!("bad reply: {e}")),
            },
            Err(e) => super::fail(e),
        },
        GroupCmd::Server(sc) => {
            let (group, yes, json) = match sc {
                ServerCmd::Add(a) => (&a.group, a.yes, a.json),
                ServerCmd::Remove(a) => (&a.group, a.yes, a.json),
            };
            let (old, master) = match stored_with_master(client, group).await {
                Ok(s) => s,
                Err(e) => return super::fail(e),
            };
            match with_server(old.clone(), &master, sc) {
                Ok(new) => change(client, &old, new, yes, json).await,
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::USAGE
                }
            }
        }
        GroupCmd::Remove(a) => {
            let question = format!(
                "Stop managing group {}? Monitoring and automatic failover of its servers end \
                 (the servers are not touched).",
                a.group
            );
            if let Some(code) = refused(confirm(a.yes, &question), "group remove") {
                return code;
            }
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
                Ok(_) if a.json => {
                    let v = serde_json::json!({ "schema": 1, "group": a.group, "removed": true });
                    out(&format!("{v:#}\n"));
                    exit::OK
                }
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
        let e = build_put(&FileArgs {
            file: f.clone(),
            yes: false,
            json: false,
        })
        .unwrap_err();
        assert!(e.contains("missing field"), "{e}");
        assert!(build_put(&FileArgs {
            file: dir.path().join("nope.toml"),
            yes: false,
            json: false,
        })
        .is_err());
    }

    fn server_add(name: &str) -> ServerCmd {
        ServerCmd::Add(ServerAddArgs {
            group: "app1".into(),
            name: name.into(),
            host: "10.0.0.9".into(),
            port: 3306,
            candidate_master: false,
            no_master: true,
            ignore_fail: true,
            ssh_host: None,
            ssh_port: None,
            master_binlog_dir: None,
            yes: false,
            json: false,
        })
    }

    /// One server more or less, checked as a group file would be; the diff names it.
    #[test]
    fn a_server_added_or_removed_shows_in_the_diff() {
        let file = include_str!("../../deploy/examples/group-app1.toml");
        let old = pb::GroupSpec::from(&crate::group_file::parse(file).unwrap());
        let render = |s: &pb::GroupSpec| group_render::render_wire(s).unwrap();
        let new = with_server(old.clone(), "db1", &server_add("db9")).unwrap();
        let d = diff(&render(&old), &render(&new));
        assert!(
            d.contains("+ name = \"db9\"") && d.contains("+ ignore_fail = true"),
            "{d}"
        );
        let e = with_server(old.clone(), "db1", &server_add("db1")).unwrap_err();
        assert!(e.contains("already has a server db1"), "{e}");
        let rm = ServerCmd::Remove(ServerRemoveArgs {
            group: "app1".into(),
            name: "db2".into(),
            yes: false,
            json: false,
        });
        let fewer = with_server(old.clone(), "db1", &rm).unwrap();
        let master = ServerCmd::Remove(ServerRemoveArgs {
            group: "app1".into(),
            name: "db1".into(),
            yes: false,
            json: false,
        });
        assert!(with_server(old.clone(), "db1", &master)
            .unwrap_err()
            .contains("is the master"));
        assert!(fewer.servers.iter().all(|s| s.name != "db2"));
        assert!(diff(&render(&old), &render(&fewer)).contains("- name = \"db2\""));
    }
}
