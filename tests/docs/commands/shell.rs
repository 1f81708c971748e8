//! Running documented command lines as written: bash with `pipefail`, a
//! PATH where `quayside` (and the workspace's other binaries) are this
//! build and the set-up's tools come first, a private HOME, a deadline on
//! every command, and no process left behind.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// A documented command, filled in for this machine.
pub struct Cmd {
    doc: &'static str,
    text: String,
    /// What messages show: `text` with secret values masked.
    shown: String,
}

impl Cmd {
    /// The command exactly as documented.
    pub fn doc(doc: &'static str) -> Cmd {
        Cmd {
            doc,
            text: doc.to_string(),
            shown: doc.to_string(),
        }
    }

    /// Replace every `placeholder` (which the documented text must contain,
    /// so a doc edit cannot silently turn this into another command).
    pub fn fill(self, placeholder: &str, value: impl AsRef<str>) -> Cmd {
        let value = value.as_ref();
        self.fill_as(placeholder, value, value)
    }

    /// Like `fill`, for a secret: messages show `***` instead.
    pub fn fill_secret(self, placeholder: &str, value: &str) -> Cmd {
        self.fill_as(placeholder, value, "***")
    }

    fn fill_as(mut self, placeholder: &str, value: &str, shown: &str) -> Cmd {
        assert!(
            self.text.contains(placeholder),
            "`{}` has no {placeholder:?} to fill: has the documentation changed?",
            self.doc
        );
        self.text = self.text.replace(placeholder, value);
        self.shown = self.shown.replace(placeholder, shown);
        self
    }

    /// Arguments added after the documented ones; the caller says why.
    pub fn append(mut self, args: &str) -> Cmd {
        self.text = format!("{} {args}", self.text);
        self.shown = format!("{} {args}", self.shown);
        self
    }
}

/// Runs commands for one scenario and records which documented ones ran.
pub struct Shell {
    root: PathBuf,
    path: OsString,
    home: tempfile::TempDir,
    _bin: tempfile::TempDir,
    /// The ledger's Run entries of this scenario.
    expected: BTreeSet<&'static str>,
    ran: Mutex<BTreeSet<&'static str>>,
}

impl Shell {
    /// `bins` (`quayside`, `quay-emulator`, …) on PATH by their names.
    pub fn new(root: &Path, bins: &[PathBuf], expected: Vec<&'static str>) -> Shell {
        // The programs on PATH are this build: the docs say `quayside …`
        // for the installed binary.
        let bin = tempfile::Builder::new()
            .prefix("docs-bin-")
            .tempdir()
            .unwrap();
        for b in bins {
            let name = b.file_name().expect("a binary's name");
            std::os::unix::fs::symlink(b, bin.path().join(name)).unwrap();
        }
        let mut dirs = vec![bin.path().to_path_buf(), root.join(".cache/bin")];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let home = tempfile::Builder::new()
            .prefix("docs-home-")
            .tempdir()
            .unwrap();
        Shell {
            root: root.to_path_buf(),
            path: std::env::join_paths(dirs).unwrap(),
            home,
            _bin: bin,
            expected: expected.into_iter().collect(),
            ran: Mutex::new(BTreeSet::new()),
        }
    }

    /// A command to run in the repository root; set options, then finish
    /// with `ok`, `fails` or `spawn`.
    pub fn run(&self, cmd: Cmd) -> Run<'_> {
        self.start(vec![cmd])
    }

    /// Several documented lines run in one shell, in order (a later line
    /// uses a variable an earlier one set).
    pub fn script(&self, cmds: Vec<Cmd>) -> Run<'_> {
        self.start(cmds)
    }

    /// A documented command run only to check its arguments (an ArgsOnly
    /// entry): not recorded as run.
    pub fn check(&self, cmd: Cmd) -> Run<'_> {
        self.build(vec![cmd])
    }

    /// A command the docs do not show, needed to set the scene.
    pub fn helper(&self, text: &str) -> Run<'_> {
        self.build(vec![Cmd {
            doc: "",
            text: text.to_string(),
            shown: text.to_string(),
        }])
    }

    fn start(&self, cmds: Vec<Cmd>) -> Run<'_> {
        for c in &cmds {
            assert!(
                self.expected.contains(c.doc),
                "`{}` is not a Run entry of this scenario in the ledger",
                c.doc
            );
            self.ran.lock().unwrap().insert(c.doc);
        }
        self.build(cmds)
    }

    fn build(&self, cmds: Vec<Cmd>) -> Run<'_> {
        Run {
            shell: self,
            cmds,
            cwd: self.root.clone(),
            env: Vec::new(),
            stdin: None,
            limit: Duration::from_secs(60),
            secret_stdout: false,
        }
    }

    /// Every Run entry of the scenario was run: a ledger entry cannot claim
    /// a run that does not happen.
    pub fn assert_ran_everything(&self) {
        let ran = self.ran.lock().unwrap();
        let missing: Vec<_> = self.expected.difference(&ran).collect();
        assert!(
            missing.is_empty(),
            "the ledger says these run in this scenario, but they did not: {missing:#?}"
        );
    }

    fn command(
        &self,
        text: &str,
        cwd: &Path,
        env: &[(String, OsString)],
        limit: Duration,
    ) -> Command {
        let mut c = Command::new("timeout");
        c.arg("--kill-after=10s")
            .arg(format!("{}s", limit.as_secs().max(1)))
            .args(["bash", "-o", "pipefail", "-c", text])
            .current_dir(cwd)
            .env("PATH", &self.path)
            .env("HOME", self.home.path())
            // No prompt and no credentials from the machine's user: a
            // command that needs a password must fail, not hang.
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("REGISTRY_AUTH_FILE", self.home.path().join("auth.json"))
            .env_remove("KUBECONFIG")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("SOPS_AGE_KEY_FILE");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }
}

/// One command (or script) about to run.
pub struct Run<'a> {
    shell: &'a Shell,
    cmds: Vec<Cmd>,
    cwd: PathBuf,
    env: Vec<(String, OsString)>,
    stdin: Option<Vec<u8>>,
    limit: Duration,
    secret_stdout: bool,
}

/// What a finished command printed.
pub struct Done {
    pub stdout: String,
    pub stderr: String,
}

impl<'a> Run<'a> {
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = dir.to_path_buf();
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    pub fn stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// The deadline (default one minute).
    pub fn limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// Its standard output holds secrets: never put it in a message.
    pub fn secret_stdout(mut self) -> Self {
        self.secret_stdout = true;
        self
    }

    fn text(&self) -> String {
        self.cmds
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn shown(&self) -> String {
        self.cmds
            .iter()
            .map(|c| c.shown.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn output(&self) -> Output {
        let mut c = self
            .shell
            .command(&self.text(), &self.cwd, &self.env, self.limit);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = c.spawn().expect("spawn timeout/bash");
        if let Some(bytes) = &self.stdin {
            let mut s = child.stdin.take().unwrap();
            s.write_all(bytes).unwrap();
        }
        // `timeout` bounds the wait.
        child.wait_with_output().unwrap()
    }

    fn describe(&self, out: &Output) -> String {
        let stdout = if self.secret_stdout {
            "(standard output not shown: it holds secrets)".to_string()
        } else {
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        format!(
            "`{}` in {}: {}\n--- stdout\n{stdout}\n--- stderr\n{}",
            self.shown(),
            self.cwd.display(),
            match out.status.code() {
                Some(124) => format!("timed out after {:?}", self.limit),
                _ => out.status.to_string(),
            },
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Run it; it must succeed.
    pub fn ok(self) -> Done {
        let out = self.output();
        assert!(out.status.success(), "{}", self.describe(&out));
        done(out)
    }

    /// Run it; it must fail (within its deadline).
    pub fn fails(self) -> Done {
        let out = self.output();
        assert!(
            !out.status.success() && out.status.code() != Some(124),
            "expected a failure: {}",
            self.describe(&out)
        );
        done(out)
    }

    /// Start it in the background; it stops when the handle is dropped,
    /// and at the latest when its deadline passes.
    pub fn spawn(self) -> Background {
        // `exec`: the signal on drop reaches the program, not a shell.
        let text = format!("exec {}", self.text());
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = self
            .shell
            .command(&text, &self.cwd, &self.env, self.limit)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.reopen().unwrap()))
            .spawn()
            .expect("spawn timeout/bash");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Background {
            stdin: child.stdin.take(),
            child,
            lines: Mutex::new(rx),
            shown: self.shown(),
            log,
        }
    }
}

fn done(out: Output) -> Done {
    Done {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A documented command running in the background. Dropping it closes its
/// standard input (what `--watch-stdin` waits for), sends SIGTERM and waits
/// for it to exit, killing it if it has not within 20 s.
pub struct Background {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Mutex<Receiver<String>>,
    shown: String,
    log: tempfile::NamedTempFile,
}

impl Background {
    /// The first line (from now on) for which `want` holds; panics after
    /// `timeout`, or when the command exits first.
    pub fn line(&self, what: &str, timeout: Duration, want: impl Fn(&str) -> bool) -> String {
        let rx = self.lines.lock().unwrap();
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!(
                    "`{}` did not print {what} within {timeout:?} ({e}); it printed:\n{}\n--- stderr (end)\n{}",
                    self.shown,
                    seen.join("\n"),
                    self.stderr_tail()
                ),
            }
        }
    }

    /// The last lines of its standard error, for messages.
    pub fn stderr_tail(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(self.log.path()).and_then(|mut f| f.read_to_string(&mut text));
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // `timeout` passes SIGTERM on to the program it runs.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
