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
mod snippet;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::secret::Secret;
use crate::state::group::{
    CredentialRef, FailoverSpec, GroupSpec, LegacySsh, PingSpec, PingType, SshSpec,
};
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
        let mut server_blocks: Vec<(u64, String, BTreeMap<String, Val>)> = Vec::new();
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
                            if self.known(&k, &v) {
                                self.defaults.insert(k, v);
                            }
                        }
                    }
                    BlockKind::Server(n) if !is_global => {
                        let mut own = BTreeMap::new();
                        for (k, v) in vals {
                            if self.known(&k, &v) {
                                own.insert(k, v);
                            }
                        }
                        server_blocks.push((n, b.name.clone(), own));
                    }
                    BlockKind::Binlog | BlockKind::Server(_) | BlockKind::Other => {
                        let why = match kind {
                            BlockKind::Binlog => keys::BINLOG_BLOCK,
                            BlockKind::Server(_) => {
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
        // MHA sorts server blocks by their number; equal numbers keep file order.
        server_blocks.sort_by_key(|(n, _, _)| *n);
        for (_, block, own) in server_blocks {
            let mut settings = self.defaults.clone();
            settings.extend(own);
            self.servers.push(ServerBlock { block, settings });
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
        let places: Vec<Val> = self
            .defaults
            .get(key)
            .into_iter()
            .chain(self.servers.iter().filter_map(|s| s.settings.get(key)))
            .cloned()
            .collect();
        for v in places {
            self.note(&v, key, "mapped", target);
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

    /// A per-group key taken as written.
    fn plain(&mut self, key: &str, target: &str) -> Option<String> {
        let v = self.group_value(key, false)?;
        self.mapped(key, target);
        Some(v.value)
    }

    /// A password: the name of an existing credential (--*-credential), or a new one whose
    /// secret is to be written.
    fn credential(&mut self, key: &str, secrets: &mut Vec<NewSecret>) -> String {
        let given = match key {
            "password" => self.names.password_credential.clone(),
            _ => self.names.repl_password_credential.clone(),
        };
        let value = self.group_value(key, true);
        let name = given
            .clone()
            .unwrap_or_else(|| format!("{}.{key}", self.group));
        match (value, given) {
            (_, Some(_)) => {
                self.mapped(
                    key,
                    &format!("{key} = \"{name}\" (an existing [credentials] entry, as asked)"),
                );
            }
            (Some(v), None) => {
                self.mapped(
                    key,
                    &format!("{key} = \"{name}\": a new [credentials] entry; the password goes to a private file"),
                );
                if v.value.is_empty() {
                    self.todo.push(format!("{key}: empty in the MHA files"));
                }
                secrets.push(NewSecret {
                    credential: name.clone(),
                    value: Secret::new(v.value),
                });
            }
            (None, None) if key == "password" => {
                self.todo.push(
                    "password: not set; MHA's default is empty, so an empty password file is \
                     written"
                        .into(),
                );
                secrets.push(NewSecret {
                    credential: name.clone(),
                    value: Secret::new(""),
                });
            }
            (None, None) => self.todo.push(format!(
                "{key}: not set (MHA reused the current replication password); write it to the \
                 file of credential {name} (mode 0600) on every manager"
            )),
        }
        name
    }

    /// The group's SSH port: [server default]'s, else 22; servers that differ keep their own.
    fn ssh_port(&mut self) -> u16 {
        match self.defaults.get("ssh_port").cloned() {
            Some(v) => match v.value.parse() {
                Ok(p) => p,
                Err(_) => {
                    self.errs.push(format!(
                        "{}:{}: ssh_port {:?} is not a port",
                        v.file, v.line, v.value
                    ));
                    22
                }
            },
            None => 22,
        }
    }

    fn ping(&mut self) -> PingSpec {
        let mut ping = PingSpec::default();
        if let Some(v) = self.group_value("ping_interval", false) {
            match v.value.parse::<u64>() {
                Ok(s) if s > 0 => {
                    ping.interval_ms = s * 1000;
                    self.mapped(
                        "ping_interval",
                        &format!(
                            "[ping] interval_ms = {} (MHA: dead after 4 failed pings; here: \
                             failure_threshold = {}, then corroboration by the other managers)",
                            ping.interval_ms, ping.failure_threshold
                        ),
                    );
                }
                _ => self.errs.push(format!(
                    "{}:{}: ping_interval {:?} is not a number of seconds",
                    v.file, v.line, v.value
                )),
            }
        }
        if let Some(v) = self.group_value("ping_type", false) {
            let t = match v.value.to_ascii_lowercase().as_str() {
                "connect" => Some(PingType::Connect),
                "select" => Some(PingType::Select),
                "insert" => Some(PingType::Insert),
                _ => None,
            };
            match t {
                Some(t) => {
                    ping.ping_type = t;
                    self.mapped(
                        "ping_type",
                        &format!("[ping] type = \"{}\"", v.value.to_ascii_lowercase()),
                    );
                }
                None => self.errs.push(format!(
                    "{}:{}: ping_type {:?}: CONNECT, SELECT or INSERT",
                    v.file, v.line, v.value
                )),
            }
        }
        ping
    }

    /// [failover]: its flags and directories; the scripts as hook names (with their argv,
    /// returned alongside for the hooks the import creates).
    fn failover(&mut self) -> (FailoverSpec, Vec<NewHook>) {
        let mut f = FailoverSpec::default();
        for key in ["check_repl_delay", "check_repl_filter", "latest_priority"] {
            let Some(v) = self.group_value(key, false) else {
                continue;
            };
            let Some(on) = keys::flag(&v.value) else {
                self.errs.push(format!(
                    "{}:{}: {key} {:?} is not 0 or 1",
                    v.file, v.line, v.value
                ));
                continue;
            };
            match key {
                "check_repl_delay" => f.check_repl_delay = on,
                "check_repl_filter" => f.check_repl_filter = on,
                _ => f.latest_priority = on,
            }
            self.mapped(key, &format!("[failover] {key} = {on}"));
        }
        if let Some(dir) = self.plain("remote_workdir", "[failover] remote_workdir") {
            f.remote_workdir = dir;
        }
        if let Some(v) = self.defaults.get("master_binlog_dir").cloned() {
            f.master_binlog_dir = v.value;
        }
        let mut new_hooks = Vec::new();
        for key in [
            "master_ip_failover_script",
            "master_ip_online_change_script",
            "shutdown_script",
            "report_script",
        ] {
            let Some(v) = self.group_value(key, false) else {
                continue;
            };
            let Some(name) = self.hook(key, &v, &mut new_hooks) else {
                continue;
            };
            match key {
                "master_ip_failover_script" => f.master_ip_failover_script = Some(name),
                "master_ip_online_change_script" => f.master_ip_online_change_script = Some(name),
                "shutdown_script" => f.shutdown_script = Some(name),
                _ => f.report_script = Some(name),
            }
        }
        (f, new_hooks)
    }

    /// A script setting as a hook name: the one the operator named, or a new entry.
    fn hook(&mut self, key: &str, v: &Val, new_hooks: &mut Vec<NewHook>) -> Option<String> {
        if let Some(name) = self.names.hooks.get(key).cloned() {
            self.mapped(
                key,
                &format!("[failover] {key} = \"{name}\" (an existing [hooks] entry, as asked)"),
            );
            return Some(name);
        }
        let Some(argv) = ini::words(&v.value).filter(|w| !w.is_empty()) else {
            self.errs.push(format!(
                "{}:{}: {key}: {:?} needs a shell (pipes, variables, redirections); make it a \
                 script and name that, or name an existing hook with --hook {key}=NAME",
                v.file, v.line, v.value
            ));
            return None;
        };
        let name = format!("{}.{}", self.group, key.trim_end_matches("_script"));
        if !argv[0].starts_with('/') {
            self.todo.push(format!(
                "hook {name}: {} is not an absolute path; mhad runs hooks without a shell or PATH",
                argv[0]
            ));
        }
        self.mapped(
            key,
            &format!("[failover] {key} = \"{name}\": a new [hooks] entry (run without a shell, MHA's arguments appended)"),
        );
        new_hooks.push(NewHook {
            name: name.clone(),
            argv,
        });
        Some(name)
    }

    /// ssh_options and client_bindir as a new SSH profile, when they say anything it needs
    /// (an identity, a known_hosts file, host key checking off, a client directory).
    fn ssh_profile(&mut self) -> Option<NewProfile> {
        let options = self.group_value("ssh_options", false);
        let bindir = self.group_value("client_bindir", false);
        if let Some(given) = self.names.ssh_profile.clone() {
            for key in ["ssh_options", "client_bindir"] {
                self.mapped(
                    key,
                    &format!(
                        "ssh_profile = \"{given}\" (an existing [ssh_profiles] entry, as asked)"
                    ),
                );
            }
            return None;
        }
        let mut p = NewProfile {
            name: self.group.clone(),
            ..NewProfile::default()
        };
        if let Some(v) = &options {
            let (key, known_hosts, accept, rest) = snippet::ssh_options(&v.value);
            p.key = key.unwrap_or_default();
            p.known_hosts = known_hosts.unwrap_or_default();
            p.accept_unknown_host_keys = accept;
            let detail = if rest.is_empty() {
                format!(
                    "[ssh_profiles.{}] (identity, known_hosts, host key checking)",
                    p.name
                )
            } else {
                format!(
                    "[ssh_profiles.{}]; not carried over: {} (mha-raft's SSH client takes no \
                     ssh(1) options)",
                    p.name,
                    rest.join(" ")
                )
            };
            self.mapped("ssh_options", &detail);
        }
        if let Some(v) = bindir {
            p.client_bindir = Some(v.value);
            self.mapped(
                "client_bindir",
                &format!("[ssh_profiles.{}] client_bindir", p.name),
            );
        }
        if p.key.is_empty()
            && p.known_hosts.is_empty()
            && !p.accept_unknown_host_keys
            && p.client_bindir.is_none()
        {
            self.todo.push(
                "ssh: MHA used the ssh_user's own ~/.ssh on the manager; each mhad's \
                 [ssh_profiles.default] must name that key and a known_hosts file"
                    .into(),
            );
            return None;
        }
        if p.key.is_empty() {
            p.key = "/root/.ssh/id_rsa".into();
            self.todo.push(format!(
                "ssh_profiles.{}: no identity in ssh_options; key = {} (ssh's default) is \
                 written, check it",
                p.name, p.key
            ));
        }
        if p.known_hosts.is_empty() {
            p.known_hosts = "/root/.ssh/known_hosts".into();
            self.todo.push(format!(
                "ssh_profiles.{}: known_hosts = {} (ssh's default) is written, check it",
                p.name, p.known_hosts
            ));
        }
        if p.accept_unknown_host_keys {
            self.todo.push(format!(
                "ssh_profiles.{}: StrictHostKeyChecking=no became accept_unknown_host_keys = \
                 true; fill known_hosts and set it false in production",
                p.name
            ));
        }
        Some(p)
    }
}

enum BlockKind {
    Default,
    /// A server block and its number (MHA's sort key).
    Server(u64),
    Binlog,
    Other,
}

fn block_kind(name: &str) -> BlockKind {
    if name == "server default" {
        return BlockKind::Default;
    }
    let digits = |rest: &str| -> u64 {
        let d: String = rest.chars().filter(|c| c.is_ascii_digit()).collect();
        d.parse().unwrap_or(0)
    };
    if let Some(rest) = name.strip_prefix("server") {
        return BlockKind::Server(digits(rest));
    }
    if name.starts_with("binlog") {
        return BlockKind::Binlog;
    }
    BlockKind::Other
}
