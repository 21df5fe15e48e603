//! mhactl: the operator's tool for an mha-raft manager cluster.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mha_raft::config::LogFormat;
use mha_raft::ctl::client::client_transport;
use mha_raft::ctl::{
    audit, certs, check, cluster_init, cluster_status, exit, failover, group, member, pause,
    rejoin, switchover, AdminClient,
};

#[derive(Parser, Debug)]
#[command(
    name = "mhactl",
    version = mha_raft::telemetry::LONG_VERSION,
    about = "Operate an mha-raft manager cluster"
)]
struct Cli {
    /// Manager admin addresses, host:port,...; any of them may be down.
    #[arg(
        long,
        env = "MHACTL_ENDPOINTS",
        value_delimiter = ',',
        global = true,
        default_value = "127.0.0.1:7101"
    )]
    endpoints: Vec<String>,
    /// The whole call's bound in milliseconds (each endpoint first gets 300 ms to connect).
    #[arg(long, default_value_t = 3000, global = true)]
    timeout_ms: u64,
    /// The cluster CA certificate (PEM): managers must present certificates it issued.
    #[arg(long, env = "MHACTL_CA", global = true)]
    ca: Option<PathBuf>,
    /// Our client certificate (PEM); its OU is our role: reader, operator or admin.
    #[arg(long, env = "MHACTL_CERT", global = true)]
    cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[arg(long, env = "MHACTL_KEY", global = true)]
    key: Option<PathBuf>,
    /// Plaintext without authentication, for managers started with --insecure.
    #[arg(long, global = true)]
    insecure: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
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
    /// An old master back as a replica of the current master (GTID groups), once it is shown
    /// to hold no transaction the master lacks; without --yes only checks.
    Rejoin(rejoin::RejoinArgs),
    /// Who changed what through the admin API, from where, with what result (newest last;
    /// role operator or higher).
    Audit(audit::AuditArgs),
    /// The cluster's CA and certificates (local files; no manager is contacted).
    #[command(subcommand)]
    Certs(certs::CertsCmd),
}

#[derive(Subcommand, Debug)]
enum ClusterCmd {
    /// One row per manager: role, term, log and apply positions, lag, last heard.
    Status(cluster_status::StatusArgs),
    /// Bootstrap a cluster whose nodes started without initial_members.
    Init(cluster_init::InitArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    mha_raft::telemetry::init(LogFormat::Text, "warn");
    if let Cmd::Certs(c) = &cli.cmd {
        return ExitCode::from(certs::execute(c) as u8);
    }
    let client = match client_transport(
        cli.ca.clone(),
        cli.cert.clone(),
        cli.key.clone(),
        cli.insecure,
    )
    .and_then(|t| {
        AdminClient::new(
            cli.endpoints.clone(),
            Duration::from_millis(cli.timeout_ms),
            t,
        )
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE as u8);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async {
        match &cli.cmd {
            Cmd::Cluster(ClusterCmd::Status(a)) => cluster_status::execute(&client, a).await,
            Cmd::Cluster(ClusterCmd::Init(a)) => cluster_init::execute(&client, a).await,
            Cmd::Member(m) => member::execute(&client, m).await,
            Cmd::Group(g) => group::execute(&client, g).await,
            Cmd::Check(c) => check::execute(&client, c).await,
            Cmd::Failover(f) => failover::execute(&client, f).await,
            Cmd::Switchover(a) => switchover::execute(&client, a).await,
            Cmd::Pause(a) => pause::pause(&client, a).await,
            Cmd::Resume(a) => pause::resume(&client, a).await,
            Cmd::Rejoin(a) => rejoin::execute(&client, a).await,
            Cmd::Audit(a) => audit::execute(&client, a).await,
            Cmd::Certs(_) => unreachable!("handled before connecting"),
        }
    });
    ExitCode::from(code as u8)
}
