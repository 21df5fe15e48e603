//! mhactl: the operator's tool for an mha-raft manager cluster.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mha_raft::config::LogFormat;
use mha_raft::ctl::cli::{self, Cli, ClusterCmd, Cmd};
use mha_raft::ctl::client::client_transport;
use mha_raft::ctl::{
    audit, certs, check, cluster_init, cluster_status, exit, failover, group, import_mha, member,
    pause, rejoin, switchover, AdminClient,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    mha_raft::telemetry::init(LogFormat::Text, "warn");
    // Local commands: no manager is contacted, no credentials needed.
    match &cli.cmd {
        Cmd::Certs(c) => return ExitCode::from(certs::execute(c) as u8),
        Cmd::ImportMha(a) => return ExitCode::from(import_mha::execute(a) as u8),
        Cmd::Completion { shell } => return ExitCode::from(cli::completion(*shell) as u8),
        Cmd::Man { dir } => return ExitCode::from(cli::man(dir) as u8),
        _ => {}
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
            Cmd::Certs(_) | Cmd::ImportMha(_) | Cmd::Completion { .. } | Cmd::Man { .. } => {
                unreachable!("handled before connecting")
            }
        }
    });
    ExitCode::from(code as u8)
}
