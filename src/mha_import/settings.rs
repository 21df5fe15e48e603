//! The per-group settings of an MHA configuration: passwords (as credentials), ping, failover
//! flags and directories, scripts (as hooks) and SSH options (as a profile).

use super::{ini, keys, snippet, Mapper, NewHook, NewProfile, NewSecret, Val};
use crate::secret::Secret;
use crate::state::group::{FailoverSpec, PingSpec, PingType};

impl Mapper {
    /// A per-group key taken as written.
    pub(super) fn plain(&mut self, key: &str, target: &str) -> Option<String> {
        let v = self.group_value(key, false)?;
        self.mapped(key, target);
        Some(v.value)
    }

    /// A password: the name of an existing credential (--*-credential), or a new one whose
    /// secret is to be written.
    pub(super) fn credential(&mut self, key: &str, secrets: &mut Vec<NewSecret>) -> String {
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
    pub(super) fn ssh_port(&mut self) -> u16 {
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

    pub(super) fn ping(&mut self) -> PingSpec {
        let mut ping = PingSpec::default();
        if self.group_value("ping_interval", false).is_none() {
            self.todo.push(format!(
                "ping_interval: not set (MHA's default 3 s); mha-raft's default {} ms is written",
                ping.interval_ms
            ));
        }
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
    pub(super) fn failover(&mut self) -> (FailoverSpec, Vec<NewHook>) {
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
    pub(super) fn hook(
        &mut self,
        key: &str,
        v: &Val,
        new_hooks: &mut Vec<NewHook>,
    ) -> Option<String> {
        if let Some(name) = self.names.hooks.get(key).cloned() {
            self.mapped(
                key,
                &format!("[failover] {key} = \"{name}\" (an existing [hooks] entry, as asked)"),
            );
            return Some(name);
        }
        let Some(argv) = ini::words(&v.value).filter(|w| !w.is_empty()) else {
            // Only the program: the rest of the line may carry a secret argument.
            let program = v.value.split_whitespace().next().unwrap_or_default();
            self.errs.push(format!(
                "{}:{}: {key}: the command line of {program} needs a shell (pipes, variables, \
                 redirections); make it a script and name that, or name an existing hook with \
                 --hook {key}=NAME",
                v.file, v.line
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
    pub(super) fn ssh_profile(&mut self) -> Option<NewProfile> {
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
            p.key = key.clone().unwrap_or_default();
            p.known_hosts = known_hosts.clone().unwrap_or_default();
            p.accept_unknown_host_keys = accept;
            let says_something = key.is_some() || known_hosts.is_some() || accept;
            for (what, path) in [("key", &key), ("known_hosts", &known_hosts)] {
                if let Some(path) = path.as_ref().filter(|p| !p.starts_with('/')) {
                    self.todo.push(format!(
                        "ssh_options: the {what} {path} is not an absolute path; mhad needs one \
                         in [ssh_profiles]"
                    ));
                }
            }
            let detail = if !says_something {
                format!(
                    "not carried over: {} (mha-raft's SSH client takes no ssh(1) options)",
                    rest.join(" ")
                )
            } else if rest.is_empty() {
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
            if says_something {
                self.mapped("ssh_options", &detail);
            } else {
                self.unmapped("ssh_options", &detail);
            }
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
                "ssh: MHA used the ssh_user's own ~/.ssh on the manager, with \
                 StrictHostKeyChecking=no; each mhad's [ssh_profiles.default] must name that key \
                 and a known_hosts file holding every DB host's key (ssh-keyscan, verified)"
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
