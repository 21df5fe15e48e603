//! mha-jepsen: the project's Jepsen-style harness. `quick` / `full` run named scenarios against
//! the lab (a set workload through the VIP from the client host, a sampler, nemeses, checkers,
//! a store directory per run); `bench` prints figures and asserts nothing; `worker` is the
//! client side, started by the harness inside the lab's client namespace.

mod bench_dead_verdict;
mod bench_failover;
mod bench_leader_kill;
mod bench_scale;
mod bench_switchover;
mod catalog;
mod checker;
mod history;
mod labctl;
mod leadership;
mod linear;
mod nemesis;
mod report;
mod sampler;
mod scenario;
mod stats;
mod suite;
mod worker;

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
    /// Every scenario once (CI); exit 1 if any fails.
    Quick(suite::Args),
    /// Every scenario N times (soak).
    Full {
        #[arg(long, default_value_t = 10)]
        runs: usize,
        #[command(flatten)]
        args: suite::Args,
    },
    /// The client workload (run by the harness inside the client host).
    Worker(worker::Args),
    /// (Re)draw plot.svg and timeline.html of a run's store directory.
    Report { dir: std::path::PathBuf },
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
    /// Online switchover under a writer through the VIP: how long writes were blocked, as
    /// the writer saw it (longest gap between acknowledged writes) and by the managers'
    /// clocks, phase by phase (lab; root).
    Switchover(bench_switchover::Args),
    /// One manager cluster monitoring many groups: managers' CPU and memory, Raft entries
    /// while idle, cluster status latency; with --kill-host, the host of every master powered
    /// off (lab; root).
    Scale(bench_scale::Args),
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
        Cmd::Bench(Bench::Switchover(a)) => rt.block_on(bench_switchover::run(a)),
        Cmd::Bench(Bench::Scale(a)) => rt.block_on(bench_scale::run(a)),
        Cmd::Quick(a) => exit_on(rt.block_on(suite::run(a, 1))?),
        Cmd::Full { runs, args } => exit_on(rt.block_on(suite::run(args, runs))?),
        Cmd::Worker(a) => rt.block_on(worker::run(a)),
        Cmd::Report { dir } => report::write(&dir),
    }
}

fn exit_on(ok: bool) -> anyhow::Result<()> {
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
