//! `mhactl import-mha`: an MHA configuration (`app1.cnf`, optionally with the global
//! `masterha_default.cnf`) as a group file, plus what each mhad's own config file needs for it.
//!
//! MHA's files hold passwords and script paths; a group file holds neither (invariant 7). So the
//! import yields three things: the group spec (names only), the secrets to be written to
//! private files, and the `[credentials]` / `[hooks]` / `[ssh_profiles]` entries that name them
//! (mod snippet). Every key found is reported: where it went, or why it was left out.
//!
//! Layering follows MHA (Config.pm): the global `[server default]`, then the application's
//! `[server default]`, then each `[serverN]` block; servers are ordered by block number, which
//! is MHA's candidate priority.

mod ini;
mod keys;
mod servers;
mod settings;
mod snippet;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::secret::Secret;
use crate::state::group::{CredentialRef, GroupSpec, LegacySsh, SshSpec};
pub use snippet::mhad_snippet;

/// One input file: its name (for messages) and text.
pub struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

/// Names the operator chose for entries the managers already have (instead of new ones).
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// The group's name (default: the application file's stem, e.g. app1).
    pub group: Option<String>,
    pub password_credential: Option<String>,
    pub repl_password_credential: Option<String>,
    pub ssh_profile: Option<String>,
    /// MHA script key (e.g. shutdown_script) → the name of an existing [hooks] entry.
    pub hooks: BTreeMap<String, String>,
}

/// What became of one setting found in the files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyNote {
    pub file: String,
    pub line: usize,
    pub block: String,
    pub key: String,
    /// "mapped", "unmapped" or "unknown" (not an MHA key: MHA itself refuses the file).
    pub outcome: &'static str,
    /// Where it went, or why not.
    pub detail: String,
}

/// A password to write to a private file for a new `[credentials]` entry.
#[derive(Clone, Debug)]
pub struct NewSecret {
    pub credential: String,
    pub value: Secret,
}

/// A new `[hooks]` entry: the script MHA ran, as program and fixed arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewHook {
    pub name: String,
    pub argv: Vec<String>,
}

/// A new `[ssh_profiles.NAME]` entry from ssh_options / client_bindir.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NewProfile {
    pub name: String,
    pub key: String,
    pub known_hosts: String,
    pub accept_unknown_host_keys: bool,
    pub client_bindir: Option<String>,
}

/// The result: a group spec that `group_file::parse(group_render::render(..))` accepts, and
/// what the managers' configs need for it.
#[derive(Debug)]
pub struct Import {
    pub spec: GroupSpec,
    pub secrets: Vec<NewSecret>,
    pub hooks: Vec<NewHook>,
    pub ssh_profile: Option<NewProfile>,
    pub notes: Vec<KeyNote>,
    /// What the operator still has to do or decide before `group add`.
    pub todo: Vec<String>,
}

/// Reads the files and maps them; `Err` lists every problem that prevents a group file (each
/// naming its file and line, or its key).
pub fn import(app: &Source, global: Option<&Source>, names: &Names) -> Result<Import, Vec<String>> {
    let app_blocks = ini::parse(app.file, app.text);
    let global_blocks = global.map(|g| ini::parse(g.file, g.text));
    let (app_blocks, global_blocks) = match (app_blocks, global_blocks.transpose()) {
        (Ok(a), Ok(g)) => (a, g.unwrap_or_default()),
        (a, g) => {
            let mut errs = a.err().unwrap_or_default();
            errs.extend(g.err().unwrap_or_default());
            return Err(errs);
        }
    };
    let group = names
        .group
        .clone()
        .unwrap_or_else(|| file_stem(app.file).to_string());
    let mut m = Mapper::new(group, names.clone());
    m.layers(
        global.map(|g| g.file),
        &global_blocks,
        app.file,
        &app_blocks,
    );
    m.finish()
}

fn file_stem(file: &str) -> &str {
    let base = file.rsplit('/').next().unwrap_or(file);
    base.split('.').next().unwrap_or(base)
}

/// A setting with where it was written.
#[derive(Clone, Debug)]
struct Val {
    value: String,
    file: String,
    block: String,
    line: usize,
}

/// The settings in force for one server block: defaults, then its own.
#[derive(Clone, Debug)]
struct ServerBlock {
    block: String,
    settings: BTreeMap<String, Val>,
}

struct Mapper {
    group: String,
    names: Names,
    /// Notes by (file, line): one per setting found.
    notes: BTreeMap<(String, usize), KeyNote>,
    defaults: BTreeMap<String, Val>,
    servers: Vec<ServerBlock>,
    errs: Vec<String>,
    todo: Vec<String>,
}

impl Mapper {
    fn new(group: String, names: Names) -> Mapper {
        Mapper {
            group,
            names,
            notes: BTreeMap::new(),
            defaults: BTreeMap::new(),
            servers: Vec::new(),
            errs: Vec::new(),
            todo: Vec::new(),
        }
    }

    fn note(&mut self, v: &Val, key: &str, outcome: &'static str, detail: impl Into<String>) {
        self.notes.insert(
            (v.file.clone(), v.line),
            KeyNote {
                file: v.file.clone(),
                line: v.line,
                block: v.block.clone(),
                key: key.to_string(),
                outcome,
                detail: detail.into(),
            },
        );
    }

    /// Sorts the blocks into layers: the global file's [server default], the application's,
    /// then the server blocks in MHA's order; notes every block and key that is not carried
    /// over.
    fn layers(
        &mut self,
        global_file: Option<&str>,
        global: &[ini::Block],
        app_file: &str,
        app: &[ini::Block],
    ) {
        let files = global_file
            .map(|f| (f, global, true))
            .into_iter()
            .chain([(app_file, app, false)]);
        // Server blocks by name: Config::Tiny merges blocks of the same name into one.
        let mut server_blocks: BTreeMap<String, BTreeMap<String, Val>> = BTreeMap::new();
        for (file, blocks, is_global) in files {
            for b in blocks {
                let vals: Vec<(String, Val)> = b
                    .entries
                    .iter()
                    .map(|e| {
                        let v = Val {
                            value: e.value.clone(),
                            file: file.to_string(),
                            block: b.name.clone(),
                            line: e.line,
                        };
                        (e.key.clone(), v)
                    })
                    .collect();
                let kind = block_kind(&b.name);
                match kind {
                    BlockKind::Default => {
                        for (k, v) in vals {
                            if keys::LOCAL_ONLY.contains(&k.as_str()) {
                                self.note(&v, &k, "unmapped", keys::LOCAL_IN_DEFAULT);
                            } else if self.known(&k, &v) {
                                let mut defaults = std::mem::take(&mut self.defaults);
                                self.put(&mut defaults, k, v);
                                self.defaults = defaults;
                            }
                        }
                    }
                    BlockKind::Server if !is_global => {
                        let mut own = server_blocks.remove(&b.name).unwrap_or_default();
                        for (k, v) in vals {
                            if self.known(&k, &v) {
                                self.put(&mut own, k, v);
                            }
                        }
                        server_blocks.insert(b.name.clone(), own);
                    }
                    BlockKind::Binlog | BlockKind::Server | BlockKind::Other => {
                        let why = match kind {
                            BlockKind::Binlog => keys::BINLOG_BLOCK,
                            BlockKind::Server => {
                                "server blocks belong in the application file, not the global one"
                            }
                            _ => "not an MHA block ([server default], [serverN], [binlogN])",
                        };
                        for (k, v) in vals {
                            self.note(&v, &k, "unmapped", format!("block [{}]: {why}", b.name));
                        }
                        if b.entries.is_empty() {
                            self.notes.insert(
                                (file.to_string(), b.line),
                                KeyNote {
                                    file: file.to_string(),
                                    line: b.line,
                                    block: b.name.clone(),
                                    key: String::new(),
                                    outcome: "unmapped",
                                    detail: format!("block [{}]: {why}", b.name),
                                },
                            );
                        }
                    }
                }
            }
        }
        let names: Vec<String> = mha_server_order(server_blocks.keys().cloned().collect());
        for block in names {
            let own = server_blocks.remove(&block).unwrap_or_default();
            let mut settings = self.defaults.clone();
            settings.extend(own);
            self.servers.push(ServerBlock { block, settings });
        }
    }

    /// Sets `key` in `map`; a value it replaces (a later line, or the application file over
    /// the global one) is noted as overridden, so every line found is reported.
    fn put(&mut self, map: &mut BTreeMap<String, Val>, key: String, v: Val) {
        let by = format!("overridden by {}:{}", v.file, v.line);
        if let Some(old) = map.insert(key.clone(), v) {
            self.note(&old, &key, "overridden", by);
        }
    }

    /// Notes an unknown or unmapped key; true when the mapper goes on with it.
    fn known(&mut self, key: &str, v: &Val) -> bool {
        match keys::kind(key) {
            None => {
                self.note(
                    v,
                    key,
                    "unknown",
                    "not an MHA 0.58 key (MHA itself refuses a file with it)",
                );
                false
            }
            Some(keys::Kind::Unmapped(why)) => {
                self.note(v, key, "unmapped", why);
                false
            }
            Some(_) => true,
        }
    }

    /// The one value of a per-group key across every server (the defaults' when there is no
    /// server); an error when servers differ. Every place it was written is noted `mapped` to
    /// `target` (by the caller's later note).
    fn group_value(&mut self, key: &str, secret: bool) -> Option<Val> {
        let mut seen: Vec<(String, Val)> = self
            .servers
            .iter()
            .filter_map(|s| s.settings.get(key).map(|v| (s.block.clone(), v.clone())))
            .collect();
        if seen.is_empty() {
            return self.defaults.get(key).cloned();
        }
        let set_on = seen.len();
        seen.dedup_by(|a, b| a.1.value == b.1.value);
        let distinct: std::collections::BTreeSet<&str> =
            seen.iter().map(|(_, v)| v.value.as_str()).collect();
        if distinct.len() > 1 || set_on < self.servers.len() {
            let shown = if secret {
                seen.iter()
                    .map(|(b, _)| b.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                seen.iter()
                    .map(|(b, v)| format!("{b}: {}", v.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            self.errs.push(format!(
                "{key}: differs between servers ({shown}{}); mha-raft keeps one {key} per group: \
                 set it once in [server default]",
                if set_on < self.servers.len() {
                    ", unset on the others"
                } else {
                    ""
                }
            ));
            return None;
        }
        seen.pop().map(|(_, v)| v)
    }

    /// Notes every place `key` was written as mapped to `target`.
    fn mapped(&mut self, key: &str, target: &str) {
        self.noted(key, "mapped", target)
    }

    /// Notes every place `key` was written as not carried over, for `why`.
    fn unmapped(&mut self, key: &str, why: &str) {
        self.noted(key, "unmapped", why)
    }

    fn noted(&mut self, key: &str, outcome: &'static str, detail: &str) {
        let places: Vec<Val> = self
            .defaults
            .get(key)
            .into_iter()
            .chain(self.servers.iter().filter_map(|s| s.settings.get(key)))
            .cloned()
            .collect();
        for v in places {
            self.note(&v, key, outcome, detail);
        }
    }

    fn finish(mut self) -> Result<Import, Vec<String>> {
        if !crate::local_config::is_name(&self.group) {
            self.errs.push(format!(
                "group name {:?} (from the file name) is not a valid name: give one with --name",
                self.group
            ));
        }
        if self.servers.is_empty() {
            self.errs
                .push("no [serverN] block: MHA's application file lists every server".into());
        }
        let ssh_port = self.ssh_port();
        let servers = servers::map(&mut self, ssh_port);
        let user = self.plain("user", "user").unwrap_or_else(|| {
            self.todo
                .push("user: not set; MHA's default root is used (user = \"root\")".into());
            "root".into()
        });
        let repl_user = self.plain("repl_user", "repl_user").unwrap_or_else(|| {
            self.errs.push(
                "repl_user: not set (MHA reads Master_User from SHOW SLAVE STATUS); add \
                 repl_user=... to [server default]"
                    .into(),
            );
            String::new()
        });
        let mut secrets = Vec::new();
        let password = self.credential("password", &mut secrets);
        let repl_password = self.credential("repl_password", &mut secrets);
        let ssh_user = self.plain("ssh_user", "ssh_user").unwrap_or_else(|| {
            self.todo.push(
                "ssh_user: not set (MHA used the manager's OS user); mha-raft's default root is \
                 written"
                    .into(),
            );
            "root".into()
        });
        let profile = self.ssh_profile();
        let ping = self.ping();
        let (failover, hooks) = self.failover();
        if !self.errs.is_empty() {
            return Err(self.errs);
        }
        let spec = GroupSpec {
            name: self.group.clone(),
            user,
            password: CredentialRef::Name(password),
            repl_user,
            repl_password: CredentialRef::Name(repl_password),
            ssh: SshSpec {
                user: ssh_user,
                port: ssh_port,
                profile: profile
                    .as_ref()
                    .map(|p| p.name.clone())
                    .or(self.names.ssh_profile.clone())
                    .unwrap_or_else(|| "default".into()),
                legacy: LegacySsh::default(),
            },
            vip: None,
            vip_interface: None,
            ping,
            servers,
            failover,
        };
        spec.validate()?;
        Ok(Import {
            spec,
            secrets,
            hooks,
            ssh_profile: profile,
            notes: self.notes.into_values().collect(),
            todo: self.todo,
        })
    }
}

enum BlockKind {
    Default,
    Server,
    Binlog,
    Other,
}

fn block_kind(name: &str) -> BlockKind {
    if name == "server default" {
        BlockKind::Default
    } else if name.starts_with("server") {
        BlockKind::Server
    } else if name.starts_with("binlog") {
        BlockKind::Binlog
    } else {
        BlockKind::Other
    }
}

/// MHA's order of server blocks (Config.pm), which is its candidate priority: by name as text;
/// then, when every name is `server` followed by a number (anything but digits may come
/// between), by that first number, equal numbers keeping their text order.
fn mha_server_order(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    let number = |n: &str| -> Option<u64> {
        let rest = n.strip_prefix("server")?;
        let digits: String = rest
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    };
    if names.iter().all(|n| number(n).is_some()) {
        names.sort_by_key(|n| number(n));
    }
    names
}
