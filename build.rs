//! Compiles proto/*.proto with protox (pure Rust), so a fresh machine needs no system `protoc`.
//! Generated code goes to OUT_DIR and is never checked in.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    git_commit();
    let protos = ["proto/raft.proto", "proto/admin.proto", "proto/probe.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Ordered maps: replies (and mhactl's --json) list servers in a stable order.
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}

/// MHA_GIT_COMMIT (`--version`, the build_info metric): the short commit this build was made
/// from, with `-dirty` when the work tree had changes; "unknown" outside a git checkout.
fn git_commit() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            // --no-optional-locks: never take index.lock from under a commit running meanwhile.
            let dirty = git(&[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])
            .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=MHA_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=MHA_BUILD_DATE={}", build_date());
    // A new commit or checkout (and a staged change, for -dirty) reruns this. Only paths that
    // exist: cargo takes a missing one as changed on every build. (An edit not yet staged does
    // not: -dirty is a hint, not a guarantee.)
    let mut watch = vec!["HEAD".to_string(), "index".into(), "packed-refs".into()];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(r);
    }
    for w in watch {
        if let Some(p) = git(&["rev-parse", "--git-path", &w]) {
            if std::path::Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
}

/// The UTC date of the build (YYYY-MM-DD); SOURCE_DATE_EPOCH, when set, for reproducible builds.
fn build_date() -> String {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
