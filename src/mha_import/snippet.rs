//! The entries every mhad's own config file needs for an imported group ([credentials],
//! [hooks], [ssh_profiles]), and MHA's ssh_options read for what an SSH profile can say.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Import;

#[derive(Serialize)]
struct Snippet {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    credentials: BTreeMap<String, FileCredential>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    hooks: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    ssh_profiles: BTreeMap<String, Profile>,
}

#[derive(Serialize)]
struct FileCredential {
    file: String,
}

#[derive(Serialize)]
struct Profile {
    key: String,
    known_hosts: String,
    accept_unknown_host_keys: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_bindir: Option<String>,
}

/// The new entries as TOML for mhad's config file; `secret_file` gives the path of a new
/// credential's password file. Empty when the group needs no new entry.
pub fn mhad_snippet(import: &Import, secret_file: &dyn Fn(&str) -> String) -> String {
    let snippet = Snippet {
        credentials: import
            .secrets
            .iter()
            .map(|s| {
                let file = secret_file(&s.credential);
                (s.credential.clone(), FileCredential { file })
            })
            .collect(),
        hooks: import
            .hooks
            .iter()
            .map(|h| (h.name.clone(), h.argv.clone()))
            .collect(),
        ssh_profiles: import
            .ssh_profile
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    Profile {
                        key: p.key.clone(),
                        known_hosts: p.known_hosts.clone(),
                        accept_unknown_host_keys: p.accept_unknown_host_keys,
                        client_bindir: p.client_bindir.clone(),
                    },
                )
            })
            .collect(),
    };
    if snippet.credentials.is_empty() && snippet.hooks.is_empty() && snippet.ssh_profiles.is_empty()
    {
        return String::new();
    }
    let body = toml::to_string(&snippet).expect("strings and booleans serialize");
    format!(
        "# Entries group {} names, for EVERY mhad's config file: merge them into its\n\
         # [credentials], [hooks] and [ssh_profiles] sections (same names on every manager;\n\
         # paths may differ per host). Password files: mode 0600, owned by mhad's user.\n\
         # Written by mhactl import-mha.\n\n{body}",
        import.spec.name
    )
}

/// What an SSH profile takes from MHA's ssh_options: the identity (`-i F`, `-o
/// IdentityFile=F`), the known_hosts file (`-o UserKnownHostsFile=F`), host key checking off
/// (`-o StrictHostKeyChecking=no`); and the options left over.
pub fn ssh_options(v: &str) -> (Option<String>, Option<String>, bool, Vec<String>) {
    let words = super::ini::words(v).unwrap_or_else(|| vec![v.to_string()]);
    let (mut key, mut known_hosts, mut accept, mut rest) = (None, None, false, Vec::new());
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let option = match w.as_str() {
            "-i" => {
                key = it.next();
                continue;
            }
            "-o" => it.next().unwrap_or_default(),
            _ if w.starts_with("-i") => {
                key = Some(w[2..].to_string());
                continue;
            }
            _ if w.starts_with("-o") => w[2..].to_string(),
            _ => {
                rest.push(w);
                continue;
            }
        };
        let (name, value) = option
            .split_once('=')
            .or_else(|| option.split_once(' '))
            .unwrap_or((option.as_str(), ""));
        match name.to_ascii_lowercase().as_str() {
            "identityfile" => key = Some(value.to_string()),
            "userknownhostsfile" => known_hosts = Some(value.to_string()),
            "stricthostkeychecking" => accept = matches!(value, "no" | "off" | "accept-new"),
            _ => rest.push(format!("-o {option}")),
        }
    }
    (key, known_hosts, accept, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ssh_options() {
        let (k, kh, acc, rest) = ssh_options(
            "-i /root/.ssh/id_dsa2 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/etc/kh -o ConnectTimeout=5 -q",
        );
        assert_eq!(k.as_deref(), Some("/root/.ssh/id_dsa2"));
        assert_eq!(kh.as_deref(), Some("/etc/kh"));
        assert!(acc);
        assert_eq!(rest, ["-o ConnectTimeout=5", "-q"]);
        let (k, _, acc, rest) = ssh_options("-o IdentityFile=/k");
        assert_eq!(k.as_deref(), Some("/k"));
        assert!(!acc);
        assert!(rest.is_empty());
    }
}
