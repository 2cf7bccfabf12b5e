//! The results file of a sweep (`runs.jsonl` in its output directory): one JSON line
//! per finished run, appended as each run finishes, so an interrupted sweep resumes
//! from what is written. A run is identified by its optimizer, learning rate, seed
//! and configuration hash; a file whose runs of an optimizer carry another hash
//! belongs to a different sweep and is refused, never mixed.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::train::config::{OptimizerKind, TrainConfig};
use crate::train::measures::RunMeasures;
use crate::train::metrics::History;

/// The results file's name in the output directory.
pub const RESULTS_FILE: &str = "runs.jsonl";

/// FNV-1a 64-bit offset basis and prime.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// What one run of a sweep measured (the per-run rows of `sweep.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    /// Its optimizer, seed, losses, accuracy, kept fraction and wall time.
    #[serde(flatten)]
    pub measured: RunMeasures,
    /// Its peak learning rate.
    pub lr: f64,
    /// Why the run stopped early (a non-finite loss), if it did.
    pub diverged: Option<String>,
}

/// One line of the results file: a run's row, its configuration hash and its
/// metrics history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// What it measured.
    #[serde(flatten)]
    pub row: RunRow,
    /// [`config_hash`] of its configuration.
    pub config_hash: String,
    /// Every step's and evaluation's metrics.
    pub history: History,
}

/// The hash identifying the sweep a run of `config` belongs to: FNV-1a over its
/// JSON with the learning rate and seed set to 0, and `data` (a fingerprint of the
/// data and its split), as 16 hex digits.
pub fn config_hash(config: &TrainConfig, data: u64) -> String {
    let normalized = TrainConfig {
        lr: 0.0,
        seed: 0,
        ..config.clone()
    };
    let json = serde_json::to_string(&normalized).expect("a configuration serializes");
    let bytes = json.bytes().chain(data.to_le_bytes());
    let hash = bytes.fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    });
    format!("{hash:016x}")
}

/// The runs already written, and the file new ones are appended to.
#[derive(Debug)]
pub struct ResultsFile {
    path: PathBuf,
    records: Vec<RunRecord>,
}

impl ResultsFile {
    /// Reads [`RESULTS_FILE`] in `dir` (empty if missing). A last line without its
    /// newline that is not a run record is the run being written when the sweep was
    /// stopped: it is cut from the file (that run trains again). Any other line that
    /// is not a run record is an error naming the file and line.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(RESULTS_FILE);
        let mut text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(io_error(&path, source)),
        };
        repair_tail(&path, &mut text)?;
        let records = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| {
                    Error::InvalidConfig(format!(
                        "{} line {}: not a sweep run record ({e}); delete that line (or the file) to rerun those runs",
                        path.display(),
                        i + 1
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { path, records })
    }

    /// Every run written so far, in file order.
    pub fn records(&self) -> &[RunRecord] {
        &self.records
    }

    /// Refuses a file holding runs of `optimizer` from another sweep (another hash).
    pub fn check_hash(&self, optimizer: OptimizerKind, hash: &str) -> Result<()> {
        match self
            .records
            .iter()
            .find(|r| r.row.measured.optimizer == optimizer && r.config_hash != hash)
        {
            Some(other) => Err(Error::InvalidConfig(format!(
                "{} holds {optimizer} runs of another sweep (configuration hash {}, this sweep's is {hash}: the model, budget, data or another option changed); pass another --out, or delete the file to start over",
                self.path.display(),
                other.config_hash
            ))),
            None => Ok(()),
        }
    }

    /// The finished run of `optimizer` at `lr` with `seed` under `hash`, if any.
    pub fn find(
        &self,
        optimizer: OptimizerKind,
        lr: f64,
        seed: u64,
        hash: &str,
    ) -> Option<&RunRecord> {
        self.records.iter().find(|r| {
            r.row.measured.optimizer == optimizer
                && r.row.lr == lr
                && r.row.measured.seed == seed
                && r.config_hash == hash
        })
    }

    /// Appends `record` as one line (written and flushed at once) and keeps it.
    pub fn append(&mut self, record: RunRecord) -> Result<()> {
        let mut line = serde_json::to_string(&record).expect("a run record serializes");
        line.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io_error(&self.path, e))?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| io_error(&self.path, e))?;
        self.records.push(record);
        Ok(())
    }
}

/// Ends `text` (the file at `path`) with a newline: a last line without one is kept
/// (newline added) when it is a run record and cut off otherwise, in the file too.
fn repair_tail(path: &Path, text: &mut String) -> Result<()> {
    if text.is_empty() || text.ends_with('\n') {
        return Ok(());
    }
    let start = text.rfind('\n').map_or(0, |i| i + 1);
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    let written = if serde_json::from_str::<RunRecord>(&text[start..]).is_ok() {
        text.push('\n');
        (&file).write_all(b"\n")
    } else {
        text.truncate(start);
        file.set_len(start as u64)
    };
    written
        .and_then(|()| file.sync_data())
        .map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line as sweeps wrote it before the measures were shared with the
    /// comparison (another field order) reads back, and writes the same fields.
    #[test]
    fn an_older_line_reads_back() {
        let old = r#"{"optimizer":"c-adamw","lr":0.003,"seed":2,"val_loss":0.25,"final_train_loss":0.5,"test_loss":null,"test_accuracy":0.875,"diverged":null,"mean_kept_fraction":0.625,"wall_s":1.5,"config_hash":"00ff","history":{"steps":[],"evals":[]}}"#;
        let record: RunRecord = serde_json::from_str(old).unwrap();
        let expected = RunRecord {
            row: RunRow {
                measured: RunMeasures {
                    optimizer: OptimizerKind::C_ADAMW,
                    seed: 2,
                    final_train_loss: Some(0.5),
                    test_accuracy: Some(0.875),
                    test_loss: None,
                    val_loss: Some(0.25),
                    mean_kept_fraction: Some(0.625),
                    wall_s: 1.5,
                },
                lr: 0.003,
                diverged: None,
            },
            config_hash: "00ff".into(),
            history: History::default(),
        };
        assert_eq!(record, expected);
        let fields = |json: &str| {
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        let written = serde_json::to_string(&record).unwrap();
        assert_eq!(fields(&written), fields(old));
    }
}
