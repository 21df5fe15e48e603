//! `mhactl import-mha app1.cnf [--global masterha_default.cnf] [-o app1.toml]`: an MHA
//! configuration as a group file, the password files (mode 0600) and the entries each mhad's
//! config file needs; every key found is reported, mapped or not. Runs locally; talks to no
//! manager.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::{exit, out, table};
use crate::mha_import::{self, Import, KeyNote, Names, Source};
use crate::security::certs::write_file;

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  mhactl import-mha /etc/masterha/app1.cnf \
    --global /etc/masterha/masterha_default.cnf -o app1.toml\n\
    then merge app1.mhad.toml into every mhad's config, copy the .pw files, and run\n  \
    mhactl group add -f app1.toml")]
pub struct ImportMhaArgs {
    /// MHA's application file (masterha_manager --conf): [server default] and [serverN] blocks.
    pub conf: PathBuf,
    /// MHA's global file (masterha_manager --global_conf): its [server default] comes first.
    #[arg(long)]
    pub global: Option<PathBuf>,
    /// The group file to write (default: NAME.toml in the current directory). The entries for
    /// mhad's config go next to it as NAME.mhad.toml.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// The group's name (default: the application file's name without extension).
    #[arg(long)]
    pub name: Option<String>,
    /// Where the password files go, one per new credential, mode 0600 (default: the group
    /// file's directory).
    #[arg(long)]
    pub secrets_dir: Option<PathBuf>,
    /// Name an existing [credentials] entry of the managers for MHA's password (no file is
    /// written for it).
    #[arg(long, value_name = "NAME")]
    pub password_credential: Option<String>,
    /// Name an existing [credentials] entry for MHA's repl_password.
    #[arg(long, value_name = "NAME")]
    pub repl_password_credential: Option<String>,
    /// Name an existing [ssh_profiles] entry instead of one made from ssh_options.
    #[arg(long, value_name = "NAME")]
    pub ssh_profile: Option<String>,
    /// Name an existing [hooks] entry for one of MHA's scripts, e.g.
    /// --hook shutdown_script=power_off (repeatable).
    #[arg(long, value_name = "KEY=NAME", value_parser = parse_hook)]
    pub hook: Vec<(String, String)>,
    /// Overwrite files that exist (the group file, NAME.mhad.toml, password files).
    #[arg(long)]
    pub force: bool,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_hook(s: &str) -> Result<(String, String), String> {
    const SCRIPTS: [&str; 4] = [
        "master_ip_failover_script",
        "master_ip_online_change_script",
        "shutdown_script",
        "report_script",
    ];
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| "expected KEY=NAME, e.g. shutdown_script=power_off".to_string())?;
    if !SCRIPTS.contains(&k) {
        return Err(format!("{k}: one of {}", SCRIPTS.join(", ")));
    }
    if !crate::local_config::is_name(v) {
        return Err(format!("{v:?} is not a valid hook name"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A file written, for the report.
#[derive(Serialize)]
struct Written {
    path: String,
    what: String,
}

#[derive(Serialize)]
struct Report<'a> {
    schema: u32,
    group: &'a str,
    servers: Vec<&'a str>,
    written: &'a [Written],
    keys: &'a [KeyNote],
    todo: &'a [String],
}

pub fn execute(a: &ImportMhaArgs) -> i32 {
    match run(a) {
        Ok(()) => exit::OK,
        Err(errs) => {
            if a.json {
                let v = serde_json::json!({ "schema": 1, "errors": errs });
                out(&format!("{v:#}\n"));
            } else {
                eprintln!("error: the MHA configuration cannot become a group file:");
                for e in &errs {
                    eprintln!("  - {e}");
                }
            }
            exit::ERROR
        }
    }
}

fn read(path: &Path) -> Result<String, Vec<String>> {
    std::fs::read_to_string(path).map_err(|e| vec![format!("{}: {e}", path.display())])
}

fn run(a: &ImportMhaArgs) -> Result<(), Vec<String>> {
    for name in [
        &a.name,
        &a.password_credential,
        &a.repl_password_credential,
        &a.ssh_profile,
    ]
    .into_iter()
    .flatten()
    {
        if !crate::local_config::is_name(name) {
            return Err(vec![format!(
                "{name:?} is not a valid name (letters, digits, '-', '_' or '.')"
            )]);
        }
    }
    let app_text = read(&a.conf)?;
    let global_text = a.global.as_deref().map(read).transpose()?;
    let app_file = a.conf.display().to_string();
    let global_file = a.global.as_ref().map(|g| g.display().to_string());
    let global = global_file
        .as_deref()
        .zip(global_text.as_deref())
        .map(|(file, text)| Source { file, text });
    let names = Names {
        group: a.name.clone(),
        password_credential: a.password_credential.clone(),
        repl_password_credential: a.repl_password_credential.clone(),
        ssh_profile: a.ssh_profile.clone(),
        hooks: a.hook.iter().cloned().collect::<BTreeMap<_, _>>(),
    };
    let import = mha_import::import(
        &Source {
            file: &app_file,
            text: &app_text,
        },
        global.as_ref(),
        &names,
    )?;
    let written = write_all(a, &import, &app_file, global_file.as_deref())?;
    if a.json {
        let report = Report {
            schema: 1,
            group: &import.spec.name,
            servers: import
                .spec
                .servers
                .iter()
                .map(|s| s.name.as_str())
                .collect(),
            written: &written,
            keys: &import.notes,
            todo: &import.todo,
        };
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ));
    } else {
        out(&text_report(&import, &written));
    }
    Ok(())
}

/// Writes the group file, the mhad entries and the password files; refuses to overwrite
/// without --force, before anything is written.
fn write_all(
    a: &ImportMhaArgs,
    import: &Import,
    app_file: &str,
    global_file: Option<&str>,
) -> Result<Vec<Written>, Vec<String>> {
    let name = &import.spec.name;
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{name}.toml")));
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    if !dir.is_dir() {
        return Err(vec![format!(
            "{}: no such directory for the group file",
            dir.display()
        )]);
    }
    let secrets_dir = a.secrets_dir.clone().unwrap_or_else(|| dir.clone());
    let secrets_dir = std::fs::canonicalize(&secrets_dir)
        .map_err(|e| vec![format!("secrets directory {}: {e}", secrets_dir.display())])?;
    let secret_path = |credential: &str| secrets_dir.join(format!("{credential}.pw"));
    let snippet = mha_import::mhad_snippet(import, &|c| secret_path(c).display().to_string());
    let snippet_path = match output.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.join(format!("{name}.mhad.toml")),
        None => PathBuf::from(format!("{name}.mhad.toml")),
    };

    let mut files: Vec<(PathBuf, String, u32, String)> = vec![(
        output.clone(),
        group_file_text(import, app_file, global_file),
        0o644,
        format!("the group file: mhactl group add -f {}", output.display()),
    )];
    if !snippet.is_empty() {
        files.push((
            snippet_path,
            snippet,
            0o644,
            "entries for EVERY mhad's config file ([credentials], [hooks], [ssh_profiles])".into(),
        ));
    }
    for s in &import.secrets {
        files.push((
            secret_path(&s.credential),
            s.value.expose().to_string(),
            0o600,
            format!(
                "password of credential {} (mode 0600): copy it to every manager",
                s.credential
            ),
        ));
    }
    if !a.force {
        let existing: Vec<String> = files
            .iter()
            .filter(|(p, ..)| p.exists())
            .map(|(p, ..)| format!("{} exists (--force overwrites it)", p.display()))
            .collect();
        if !existing.is_empty() {
            return Err(existing);
        }
    }
    let mut written = Vec::new();
    for (path, text, mode, what) in files {
        // A new file renamed over the old one: a replaced password file is 0600 too.
        write_file(&path, &text, mode).map_err(|e| vec![e.to_string()])?;
        written.push(Written {
            path: path.display().to_string(),
            what,
        });
    }
    Ok(written)
}

/// The group file: where it came from and what was left out, as comments, then the group.
fn group_file_text(import: &Import, app_file: &str, global_file: Option<&str>) -> String {
    let mut head = format!(
        "# Group {} imported from {app_file}{} by mhactl import-mha.\n\
         # Passwords, scripts and SSH settings are names of entries in each mhad's config file\n\
         # (see {}.mhad.toml when one was written).\n",
        import.spec.name,
        global_file
            .map(|g| format!(" (global: {g})"))
            .unwrap_or_default(),
        import.spec.name
    );
    let left_out: Vec<&KeyNote> = import
        .notes
        .iter()
        .filter(|n| n.outcome != "mapped")
        .collect();
    if !left_out.is_empty() {
        head.push_str("#\n# Not carried over:\n");
        for n in left_out {
            head.push_str(&format!(
                "#   {}:{} [{}] {}: {}\n",
                n.file, n.line, n.block, n.key, n.detail
            ));
        }
    }
    if !import.todo.is_empty() {
        head.push_str("#\n# To check before mhactl group add:\n");
        for t in &import.todo {
            head.push_str(&format!("#   - {t}\n"));
        }
    }
    format!("{head}\n{}", crate::group_render::render(&import.spec))
}

fn text_report(import: &Import, written: &[Written]) -> String {
    let servers: Vec<&str> = import
        .spec
        .servers
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let mut s = format!(
        "group {}: {} servers ({})\n\n",
        import.spec.name,
        servers.len(),
        servers.join(", ")
    );
    for w in written {
        s.push_str(&format!("wrote {}  {}\n", w.path, w.what));
    }
    let rows: Vec<Vec<String>> = import
        .notes
        .iter()
        .map(|n| {
            vec![
                format!("{}:{}", n.file, n.line),
                n.block.clone(),
                n.key.clone(),
                n.outcome.to_string(),
                n.detail.clone(),
            ]
        })
        .collect();
    s.push('\n');
    s.push_str(&table::render(
        &["WHERE", "BLOCK", "KEY", "OUTCOME", "TO / WHY"],
        &rows,
    ));
    if !import.todo.is_empty() {
        s.push_str("\nto check before mhactl group add:\n");
        for t in &import.todo {
            s.push_str(&format!("  - {t}\n"));
        }
    }
    s
}
