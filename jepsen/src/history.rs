//! Jepsen's history model: every client operation is recorded as an `invoke`, then exactly one
//! completion: `ok`, `fail` (it certainly did not happen) or `info` (unknown: it may have
//! happened). A process whose operation ended `info` is retired and replaced by a new process
//! id, as in Jepsen, so every process has at most one operation in flight and an unknown
//! outcome never hides behind a later one. Written as JSON Lines.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub index: u64,
    /// Milliseconds since the Unix epoch (wall clock shared with the managers' journal).
    pub time_ms: u64,
    pub process: u64,
    #[serde(rename = "type")]
    pub kind: OpType,
    /// add | read | probe
    pub f: String,
    pub value: serde_json::Value,
    /// The server that answered (its @@server_id as dbN), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A shared, ordered recorder.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<Vec<Op>>>,
}

pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Recorder {
    pub fn new() -> Self {
        Recorder::default()
    }

    pub fn record(
        &self,
        process: u64,
        kind: OpType,
        f: &str,
        value: serde_json::Value,
        node: Option<String>,
        error: Option<String>,
    ) {
        let mut h = self.inner.lock().expect("history lock");
        let index = h.len() as u64;
        h.push(Op {
            index,
            time_ms: wall_ms(),
            process,
            kind,
            f: f.to_string(),
            value,
            node,
            error,
        });
    }

    pub fn ops(&self) -> Vec<Op> {
        self.inner.lock().expect("history lock").clone()
    }
}

pub fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in items {
        serde_json::to_writer(&mut f, i)?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    Ok(())
}

pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}
