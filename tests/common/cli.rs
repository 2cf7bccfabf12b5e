//! Running the `coptim` binary from the command-line tests.

use std::process::{Command, Output};

/// Runs `coptim args` (with the lavapipe warning silenced) and returns its output.
pub fn coptim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coptim"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .output()
        .expect("the coptim binary runs")
}

/// The error output of a run, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `coptim args`, which must succeed.
pub fn succeeds(args: &[&str]) -> Output {
    let o = coptim(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    o
}

/// Runs `coptim args`, which must fail; returns its error output.
pub fn fails(args: &[&str]) -> String {
    let o = coptim(args);
    assert!(!o.status.success(), "{args:?} succeeded");
    stderr(&o)
}

/// The JSON a `--json` run printed (stdout holds nothing else).
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).expect("stdout is JSON only")
}
