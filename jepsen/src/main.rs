//! mha-jepsen: the project's Jepsen-style harness. So far it has the bench mode for the manager
//! cluster itself; the lab scenarios and checkers arrive with the lab (issues B–F).
//!
//! Benchmarks print figures and assert nothing.

mod bench_dead_verdict;
mod bench_failover;
mod bench_leader_kill;
mod labctl;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "mha-jepsen",
    about = "Fault-injection suite and benchmarks for mha-raft"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Benchmarks (print figures, assert nothing).
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Leader SIGKILL → a new leader serving admin calls (with quorum), over N kills.
    LeaderKill(bench_leader_kill::Args),
    /// Master SIGKILL → Dead verdict committed, per ping setting (lab; root).
    DeadVerdict(bench_dead_verdict::Args),
    /// Master SIGKILL under writes → first acknowledged write through the VIP, verdict, run
    /// completed; optionally with the Raft leader SIGKILLed mid-failover (lab; root).
    Failover(bench_failover::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Bench(Bench::LeaderKill(a)) => rt.block_on(bench_leader_kill::run(a)),
        Cmd::Bench(Bench::DeadVerdict(a)) => rt.block_on(bench_dead_verdict::run(a)),
        Cmd::Bench(Bench::Failover(a)) => rt.block_on(bench_failover::run(a)),
    }
}
