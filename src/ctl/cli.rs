//! mhactl's command line: every command, flag and its help (the binary parses it; tests walk
//! it; shell completions and man pages are generated from it).

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use super::{
    audit, certs, check, cluster_init, cluster_status, failover, group, import_mha, member, pause,
    rejoin, switchover,
};

#[derive(Parser, Debug)]
#[command(
    name = "mhactl",
    version = crate::telemetry::LONG_VERSION,
    about = "Operate an mha-raft manager cluster"
)]
pub struct Cli {
    /// Manager admin addresses, host:port,...; any of them may be down.
    #[arg(
        long,
        env = "MHACTL_ENDPOINTS",
        value_delimiter = ',',
        global = true,
        default_value = "127.0.0.1:7101"
    )]
    pub endpoints: Vec<String>,
    /// The whole call's bound in milliseconds (each endpoint first gets 300 ms to connect).
    #[arg(long, default_value_t = 3000, global = true)]
    pub timeout_ms: u64,
    /// The cluster CA certificate (PEM): managers must present certificates it issued.
    #[arg(long, env = "MHACTL_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// Our client certificate (PEM); its OU is our role: reader, operator or admin.
    #[arg(long, env = "MHACTL_CERT", global = true)]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[arg(long, env = "MHACTL_KEY", global = true)]
    pub key: Option<PathBuf>,
    /// Plaintext without authentication, for managers started with --insecure.
    #[arg(long, global = true)]
    pub insecure: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// The manager cluster.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Manager membership.
    #[command(subcommand)]
    Member(member::MemberCmd),
    /// Replication groups.
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// Health checks (masterha_check_repl / masterha_check_ssh / masterha_check_status).
    #[command(subcommand)]
    Check(check::CheckCmd),
    /// Failover: run one (manual), explain the choice (--dry-run), ack, history.
    Failover(failover::FailoverArgs),
    /// Planned switch of a live master (masterha_master_switch --master_state=alive): MHA's
    /// gates, writes blocked, the new master level and writable, replicas repointed; rolled
    /// back if it fails before the new master takes over. Without --yes only the gates run.
    Switchover(switchover::SwitchoverArgs),
    /// Maintenance mode: automatic failover off for a group (or all), monitoring and checks
    /// on; a master death is recorded and shown, not acted on. Manual failover still works.
    Pause(pause::PauseArgs),
    /// End maintenance mode: automatic failover on again (a master that died meanwhile is
    /// suspected afresh, corroborated, then failed over as usual).
    Resume(pause::ResumeArgs),
    /// An old master back as a replica of the current master, once it is shown to hold no
    /// transaction the master lacks (GTID, or its binlog past the journaled failover point);
    /// without --yes only checks.
    Rejoin(rejoin::RejoinArgs),
    /// Who changed what through the admin API, from where, with what result (newest last;
    /// role operator or higher).
    Audit(audit::AuditArgs),
    /// An MHA configuration (app1.cnf, masterha_default.cnf) as a group file, password files
    /// (0600) and the entries each mhad's config needs; every MHA key is reported as mapped,
    /// unmapped (with why) or unknown (no manager is contacted).
    ImportMha(import_mha::ImportMhaArgs),
    /// The cluster's CA and certificates (local files; no manager is contacted).
    #[command(subcommand)]
    Certs(certs::CertsCmd),
    /// Print a shell completion script (no manager is contacted).
    ///
    /// Example: mhactl completion bash > /etc/bash_completion.d/mhactl
    Completion {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages, one per command (mhactl.1, mhactl-group-add.1, ...), into a
    /// directory (no manager is contacted).
    ///
    /// Example: mhactl man --dir /usr/local/share/man/man1
    Man {
        /// Where to write them (created if missing).
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// One row per manager: role, term, log and apply positions, lag, last heard.
    Status(cluster_status::StatusArgs),
    /// Bootstrap a cluster whose nodes started without initial_members.
    Init(cluster_init::InitArgs),
}

/// `mhactl completion SHELL`: the script on standard output.
pub fn completion(shell: clap_complete::Shell) -> i32 {
    use std::io::Write;
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "mhactl", &mut script);
    // A reader that stops early (`| head`) is not an error.
    match std::io::stdout().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: writing the completion script: {e}");
            super::exit::ERROR
        }
        _ => super::exit::OK,
    }
}

/// `mhactl man --dir D`: one page per command.
pub fn man(dir: &std::path::Path) -> i32 {
    let written =
        std::fs::create_dir_all(dir).and_then(|_| clap_mangen::generate_to(Cli::command(), dir));
    match written {
        Ok(()) => {
            use std::io::Write;
            let _ = writeln!(std::io::stdout(), "man pages written to {}", dir.display());
            super::exit::OK
        }
        Err(e) => {
            eprintln!("error: writing man pages to {}: {e}", dir.display());
            super::exit::ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command says what it does and every flag what it means (`--help`), the whole tree
    /// walked; the definition is consistent (clap's own checks).
    #[test]
    fn every_command_and_flag_is_explained() {
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cmd, "mhactl", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
    }

    /// Every command that prints a result can print it as JSON (`--json`), except the two
    /// whose output is a script or files for other tools.
    #[test]
    fn every_command_that_prints_has_json() {
        fn leaves(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
            let subs: Vec<&clap::Command> = cmd
                .get_subcommands()
                .filter(|s| s.get_name() != "help")
                .collect();
            let runnable = subs.is_empty() || cmd.is_args_conflicts_with_subcommands_set();
            if runnable
                && !["mhactl completion", "mhactl man"].contains(&path)
                && !cmd.get_arguments().any(|a| a.get_id() == "json")
            {
                out.push(path.to_string());
            }
            for sub in subs {
                leaves(sub, &format!("{path} {}", sub.get_name()), out);
            }
        }
        let mut without = Vec::new();
        leaves(&Cli::command(), "mhactl", &mut without);
        assert!(without.is_empty(), "without --json: {without:#?}");
    }

    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        if cmd.get_about().is_none() && path != "mhactl" {
            missing.push(format!("{path} (command)"));
        }
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if a.get_help().is_none() && a.get_long_help().is_none() {
                missing.push(format!("{path} --{id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
}
