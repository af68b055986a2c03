//! What the tests need beyond Rust, from the one installer, `scripts/test-deps.sh`: venvs
//! from `tests/deps/requirements.lock` and `tests/deps/nacos3.lock`, `node_modules` from `tests/deps/package-lock.json`,
//! Debian's Chromium and its driver, Debian's VictoriaMetrics. The first call installs (under `target/test-deps/`),
//! later ones find it in place; a test that cannot get its tools fails, naming what is
//! missing and the command to run, and never skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Runs `scripts/test-deps.sh kind` and answers the path it prints.
fn install(kind: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = repo.join("scripts/test-deps.sh");
    let output = Command::new("bash").arg(&script).arg(kind).current_dir(&repo).output();
    let output = match output {
        Ok(output) => output,
        Err(e) => panic!("cannot run the test installer `bash scripts/test-deps.sh {kind}`: {e}"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reason = stderr.lines().rev().find(|l| l.starts_with("test-deps:"));
    assert!(
        output.status.success(),
        "{}",
        reason.map_or_else(
            || format!("test-deps: {kind} is missing; run scripts/test-deps.sh {kind} ({stderr})"),
            str::to_owned
        )
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = PathBuf::from(stdout.trim());
    assert!(
        path.exists(),
        "test-deps: scripts/test-deps.sh {kind} printed {path:?}, which does not exist; run it by hand"
    );
    path
}

/// The venv holding schemathesis and the Python clients.
pub fn python_venv() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| install("python"))
}

/// The venv's interpreter.
pub fn python() -> PathBuf {
    python_venv().join("bin/python")
}

/// The interpreter of the venv holding nacos-sdk-python 3.x (`tests/deps/nacos3.lock`).
pub fn python_nacos3() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| install("python-nacos3")).join("bin/python")
}

/// The `node_modules` holding the npm clients.
pub fn node_modules() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| install("node"))
}

/// Chromium's WebDriver (Chromium itself beside it, at `/usr/bin/chromium`).
pub fn chromedriver() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| install("browser"))
}

/// Debian's VictoriaMetrics, a scraper that reads `consul_sd_configs`.
pub fn victoria_metrics() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| install("scraper"))
}
