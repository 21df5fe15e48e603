//! `quick` (every scenario once) and `full --runs N` (every scenario N times): runs the
//! scenarios one after the other, prints each verdict with its checks, writes a summary, and
//! ends with "N passed, N failed".

use std::path::PathBuf;

use crate::labctl::mhad_path;
use crate::scenario::{self, Outcome};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only the scenarios whose name contains one of these.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where each run's history, samples, journal, logs and results go.
    #[arg(long, default_value = "jepsen/store")]
    store: PathBuf,
    #[arg(long)]
    mhad: Option<PathBuf>,
}

pub async fn run(args: Args, runs: usize) -> anyhow::Result<bool> {
    let mhad = mhad_path(args.mhad.clone())?;
    std::fs::create_dir_all(&args.store)?;
    let scenarios: Vec<_> = crate::catalog::all()
        .into_iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| s.name.contains(o.as_str())))
        .collect();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for round in 1..=runs {
        for sc in &scenarios {
            println!("== {} (run {round}/{runs}): {}", sc.name, sc.about);
            let o = scenario::run(sc, &mhad, &args.store).await;
            for c in &o.checks {
                println!(
                    "  {} {}: {}",
                    if c.valid {
                        "ok  "
                    } else if c.informational {
                        "info"
                    } else {
                        "FAIL"
                    },
                    c.name,
                    c.summary
                );
            }
            if let Some(e) = &o.error {
                println!("  ERROR: {e}");
            }
            println!(
                "  => {} in {:.0} s ({})",
                if o.passed { "PASS" } else { "FAIL" },
                o.took_ms as f64 / 1000.0,
                o.store
            );
            outcomes.push(o);
        }
    }
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let failed = outcomes.len() - passed;
    let summary = serde_json::json!({
        "passed": passed,
        "failed": failed,
        "runs": outcomes.iter().map(|o| serde_json::json!({
            "scenario": o.scenario, "passed": o.passed, "took_ms": o.took_ms, "store": o.store,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(
        args.store.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}
