//! A real client as a child process, running its scenario from `tests/clients/`: it prints
//! checkpoints, waits on its stdin at each for the test to look meanwhile, and ends with
//! `ok`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::deps;

/// The path of a scenario script in `tests/clients/`.
fn script(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/clients")
        .join(name)
        .display()
        .to_string()
}

/// A client scenario as a child process: it prints `REGISTERED` once it sees both of its
/// instances, waits for a line on stdin, and ends with `ok`.
pub struct Scenario {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    name: String,
}

impl Scenario {
    pub fn start(name: &str, program: PathBuf, args: &[String]) -> Scenario {
        Scenario::start_with(name, program, args, &[])
    }

    /// [`Scenario::start`] with `env` set for the child (a CA file for an HTTPS node).
    pub fn start_with(name: &str, program: PathBuf, args: &[String], env: &[(&str, &str)]) -> Scenario {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env("NODE_PATH", deps::node_modules())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Scenario {
            child,
            lines,
            name: name.to_owned(),
        }
    }

    pub fn python(script_name: &str, args: &[String]) -> Scenario {
        Scenario::python_with(script_name, args, &[])
    }

    /// [`Scenario::python`] with `env` set for the child.
    pub fn python_with(script_name: &str, args: &[String], env: &[(&str, &str)]) -> Scenario {
        let mut all = vec![script(script_name)];
        all.extend_from_slice(args);
        Scenario::start_with(script_name, deps::python(), &all, env)
    }

    /// A scenario run by nacos-sdk-python 3.x's interpreter.
    pub fn python_nacos3(script_name: &str, args: &[String]) -> Scenario {
        let mut all = vec![script(script_name)];
        all.extend_from_slice(args);
        Scenario::start(script_name, deps::python_nacos3(), &all)
    }

    pub fn node(script_name: &str, args: &[String]) -> Scenario {
        Scenario::node_with(script_name, args, &[])
    }

    /// [`Scenario::node`] with `env` set for the child.
    pub fn node_with(script_name: &str, args: &[String], env: &[(&str, &str)]) -> Scenario {
        let mut all = vec![script(script_name)];
        all.extend_from_slice(args);
        Scenario::start_with(script_name, PathBuf::from("node"), &all, env)
    }

    /// Blocks until the scenario prints `line` (on a blocking thread: the node under test
    /// runs on this runtime).
    pub async fn expect(mut self, line: &'static str) -> Scenario {
        tokio::task::spawn_blocking(move || {
            for seen in self.lines.by_ref() {
                let seen = seen.unwrap_or_default();
                if seen.trim() == line {
                    return self;
                }
                eprintln!("[{}] {seen}", self.name);
            }
            let status = self.child.wait();
            panic!("{} ended before printing {line}: {status:?}", self.name);
        })
        .await
        .expect("the scenario reader")
    }

    pub fn go_on(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "go").expect("the scenario reads its stdin");
    }

    pub async fn finish(mut self) {
        let name = self.name.clone();
        let status = tokio::task::spawn_blocking(move || {
            let status = self.child.wait();
            for line in self.lines.by_ref().map_while(Result::ok) {
                eprintln!("[{}] {line}", self.name);
            }
            status
        })
        .await
        .expect("the scenario");
        assert!(status.is_ok_and(|s| s.success()), "{name} failed");
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
