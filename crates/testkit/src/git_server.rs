//! A real git server on loopback: `git http-backend` behind basic auth (run
//! by the Go-built `testcluster gitserver`), with a pull-request API in
//! GitHub's shape. Repositories are bare folders the test can inspect.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::tools;

pub const USER: &str = "quayside";
pub const PASSWORD: &str = "s3cret-test-password";

/// A running git server; stops when dropped.
pub struct GitServer {
    root: tempfile::TempDir,
    child: Option<(Child, ChildStdin)>,
    url: String,
    public: Vec<String>,
    /// Certificate and key files, when serving HTTPS.
    tls: Option<(PathBuf, PathBuf)>,
}

impl GitServer {
    /// Serve new bare repositories: `public` ones readable anonymously,
    /// `private` ones only with [`USER`]/[`PASSWORD`]. Names without `.git`.
    pub fn start(public: &[&str], private: &[&str]) -> GitServer {
        GitServer::start_with(public, private, None)
    }

    /// [`GitServer::start`] over HTTPS, presenting `cert_pem` (with
    /// `key_pem`) for git and the pull-request API alike; clients must
    /// trust the CA that signed it.
    pub fn start_tls(
        public: &[&str],
        private: &[&str],
        cert_pem: &str,
        key_pem: &str,
    ) -> GitServer {
        GitServer::start_with(public, private, Some((cert_pem, key_pem)))
    }

    fn start_with(public: &[&str], private: &[&str], tls: Option<(&str, &str)>) -> GitServer {
        let root = crate::scratch::dir("quayside-git-").unwrap();
        for name in public.iter().chain(private) {
            init_bare(&root.path().join(format!("{name}.git")));
        }
        let public: Vec<String> = public.iter().map(|p| format!("{p}.git")).collect();
        // Beside the repositories (NAME.git): the server never serves them.
        let tls = tls.map(|(cert, key)| {
            let (c, k) = (
                root.path().join("tls-cert.pem"),
                root.path().join("tls-key.pem"),
            );
            std::fs::write(&c, cert).unwrap();
            std::fs::write(&k, key).unwrap();
            (c, k)
        });
        let mut s = GitServer {
            root,
            child: None,
            url: String::new(),
            public,
            tls,
        };
        s.spawn("127.0.0.1:0");
        s
    }

    fn spawn(&mut self, listen: &str) {
        let mut child = Command::new(tools::bin("testcluster"))
            .arg("gitserver")
            .arg("--root")
            .arg(self.root.path())
            .args(["--listen", listen, "--user", USER, "--password", PASSWORD])
            .args(["--public", &self.public.join(","), "--watch-stdin"])
            .args(self.tls.iter().flat_map(|(c, k)| {
                [
                    "--tls-cert".as_ref(),
                    c.as_os_str(),
                    "--tls-key".as_ref(),
                    k.as_os_str(),
                ]
            }))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gitserver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("gitserver said {line:?}"))
            .trim()
            .to_string();
        self.url = url;
        // The server exits when this pipe closes: no process outlives the test.
        let stdin = child.stdin.take().unwrap();
        self.child = Some((child, stdin));
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn base_url(&self) -> &str {
        &self.url
    }

    /// Anonymous clone URL of a repository.
    pub fn repo_url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.url)
    }

    /// Clone URL with the credentials embedded.
    pub fn authed_repo_url(&self, name: &str) -> String {
        self.repo_url(name)
            .replacen("://", &format!("://{USER}:{PASSWORD}@"), 1)
    }

    /// Folder of a bare repository on disk.
    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.root.path().join(format!("{name}.git"))
    }

    /// Add a bare repository while the server runs.
    pub fn add_repo(&self, name: &str) {
        init_bare(&self.repo_path(name));
    }

    /// Make repository `name` readable anonymously or not (a source that
    /// turns private): the server is restarted on the same address, as the
    /// list of public repositories is read at start.
    pub fn set_public(&mut self, name: &str, public: bool) {
        let file = format!("{name}.git");
        self.public.retain(|p| *p != file);
        if public {
            self.public.push(file);
        }
        self.restart();
    }

    /// Stop the server (the repositories stay) — for "server down" tests.
    pub fn stop(&mut self) {
        if let Some((mut c, _stdin)) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same address.
    pub fn restart(&mut self) {
        self.stop();
        let addr = self
            .url
            .split_once("://")
            .map_or("", |(_, a)| a)
            .to_string();
        self.spawn(&addr);
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A bare repository on `main` that `git http-backend` accepts pushes to.
pub fn init_bare(path: &Path) {
    let ok = Command::new("git")
        .args(["init", "--quiet", "--bare", "--initial-branch=main"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git init --bare {path:?}");
    // Pushes over HTTP need this for http-backend to accept receive-pack.
    let ok = Command::new("git")
        .arg("-C")
        .arg(path)
        .args(["config", "http.receivepack", "true"])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
