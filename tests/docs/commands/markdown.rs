//! Finding the commands in Markdown: every line of ```sh/```bash/```shell
//! blocks (```console: the `$ ` lines), and the inline `code` spans that are
//! commands by the rule in tests/docs/commands.rs.

use std::path::Path;

/// Programs an inline span may start with to be a command.
pub const PROGRAMS: &[&str] = &[
    "quayside",
    "quay-emulator",
    "quayside-bench",
    "testcluster",
    "kubectl",
    "sops",
    "age",
    "age-keygen",
    "skopeo",
    "git",
    "cargo",
    "perf",
    "docker",
    "podman",
    "curl",
    "yq",
    "jq",
    "xxd",
    "od",
    "sed",
    "go",
    "helm",
    "kustomize",
    "argocd",
    "flux",
    "make",
];

/// Folders whose files are programs (`scripts/demo`, `.cache/bin/sops`).
pub const PROGRAM_DIRS: &[&str] = &[
    "scripts/",
    ".cache/bin/",
    ".ci/",
    "target/release/",
    "target/debug/",
    "fuzz/target/",
];

/// One command as documented, whitespace-normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub command: String,
    /// `docs/x.md:12`, for messages.
    pub place: String,
}

/// Every command in README.md and docs/*.md, in file order. docs/crd-reference.md
/// is generated from the Rust types and holds no command.
pub fn commands_in_docs(root: &Path) -> Vec<Found> {
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter(|p| !p.ends_with("crd-reference.md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.strip_prefix(root).unwrap().display().to_string();
        found.extend(commands(&name, &text));
    }
    found
}

/// The commands of one Markdown text.
pub fn commands(file: &str, text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    // Prose with the fenced blocks blanked out, so line numbers still hold
    // and a backtick inside a block never opens an inline span.
    let mut prose = String::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let Some((fence, info)) = fence_open(lines[i]) else {
            prose.push_str(lines[i]);
            prose.push('\n');
            i += 1;
            continue;
        };
        prose.push('\n');
        i += 1;
        let shell = matches!(info.as_str(), "sh" | "bash" | "shell");
        let console = info == "console";
        while i < lines.len() && !is_fence_close(lines[i], &fence) {
            let start = i;
            let mut line = lines[i].to_string();
            // A trailing backslash continues the command on the next line.
            while line.trim_end().ends_with('\\') && i + 1 < lines.len() {
                let t = line.trim_end();
                line = format!("{} {}", &t[..t.len() - 1], lines[i + 1]);
                i += 1;
                prose.push('\n');
            }
            prose.push('\n');
            i += 1;
            let trimmed = line.trim_start();
            let cmd = if console {
                // In a console block only the prompt lines are commands;
                // the rest is their output.
                match trimmed.strip_prefix("$ ") {
                    Some(c) => c,
                    None => continue,
                }
            } else if shell {
                trimmed.strip_prefix("$ ").unwrap_or(trimmed)
            } else {
                continue;
            };
            let cmd = normalise(strip_comment(cmd));
            if !cmd.is_empty() {
                found.push(Found {
                    command: cmd,
                    place: format!("{file}:{}", start + 1),
                });
            }
        }
        prose.push('\n');
        i += 1;
    }
    for (line, span) in inline_spans(&prose) {
        if is_command_span(&span) {
            found.push(Found {
                command: span,
                place: format!("{file}:{line}"),
            });
        }
    }
    found
}

/// The fence string and the info word when `line` opens a fenced block.
fn fence_open(line: &str) -> Option<(String, String)> {
    let t = line.trim_start();
    let ch = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = t.chars().take_while(|c| *c == ch).count();
    if n < 3 {
        return None;
    }
    let info = t[n..].split_whitespace().next().unwrap_or("").to_string();
    Some((t[..n].to_string(), info))
}

fn is_fence_close(line: &str, fence: &str) -> bool {
    let t = line.trim();
    t.starts_with(fence) && t.chars().all(|c| fence.starts_with(c))
}

/// The shell line without its trailing `# comment` (a `#` that starts a
/// word outside quotes, as bash reads it).
pub fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev_blank = true;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            prev_blank = false;
            continue;
        }
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped = true,
            (Some('"'), '"') => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if prev_blank => return &line[..i],
            _ => {}
        }
        prev_blank = quote.is_none() && c.is_whitespace();
    }
    line
}

/// Runs of whitespace become one space (also inside quotes: no documented
/// command depends on them).
pub fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Inline code spans of `prose` with the line each starts on. A span may
/// run over a line break (Markdown joins the lines with a space).
fn inline_spans(prose: &str) -> Vec<(usize, String)> {
    let b = prose.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'`' {
            i += 1;
            continue;
        }
        let n = b[i..].iter().take_while(|c| **c == b'`').count();
        let open = i;
        let body = i + n;
        // The closing run has exactly as many backticks.
        let mut j = body;
        let mut close = None;
        while j < b.len() {
            if b[j] == b'`' {
                let m = b[j..].iter().take_while(|c| **c == b'`').count();
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(c) => {
                let line = prose[..open].matches('\n').count() + 1;
                out.push((line, normalise(&prose[body..c])));
                i = c + n;
            }
            None => i = body,
        }
    }
    out
}

/// The rule for inline spans: after any `NAME=value` assignments, the first
/// word is a known program (or a file in a program folder), and what follows
/// is more than one bare subcommand or flag name. So `quayside run`,
/// `skopeo login` and `sops --encrypt` name a tool, `.cache/bin/` is a path,
/// and `quayside run --help`, `scripts/fuzz 10` and `kubectl get components`
/// are commands.
pub fn is_command_span(span: &str) -> bool {
    let words: Vec<&str> = span.split_whitespace().collect();
    let assignment = |w: &str| {
        w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        })
    };
    let Some(p) = words.iter().position(|w| !assignment(w)) else {
        return false;
    };
    let (program, args) = (words[p], &words[p + 1..]);
    let known = PROGRAMS.contains(&program)
        || PROGRAM_DIRS
            .iter()
            .any(|d| program.len() > d.len() && program.starts_with(d) && !program.ends_with('/'));
    let bare_name = |w: &str| {
        let w = w.trim_start_matches('-');
        w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    known && !args.is_empty() && !(args.len() == 1 && bare_name(args[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_that_name_a_tool_are_not_commands() {
        for s in [
            "quayside run",
            "skopeo login",
            "sops --encrypt",
            "cargo test",
            ".cache/bin/",
            ".cache/bin/testcluster",
            "scripts/demo",
            "quayside.dev/cleanup",
            "quayside::seal",
            "age1…",
            "sops:",
            "kubectl kustomize",
        ] {
            assert!(!is_command_span(s), "{s:?} is not a command");
        }
    }

    #[test]
    fn spans_with_arguments_are_commands() {
        for s in [
            "quayside run --help",
            "scripts/fuzz 10",
            "kubectl get components",
            "kubectl apply -k deploy/",
            "SOPS_AGE_KEY_FILE=key.txt sops --decrypt x.sops.yaml",
            "git log --grep 'Quayside-Component: api'",
            "fuzz/target/x/release/<target> <file>",
        ] {
            assert!(is_command_span(s), "{s:?} is a command");
        }
    }

    #[test]
    fn blocks_join_continuations_and_drop_comments_and_prompts() {
        let md = "Text `kubectl get\ncomponents -A` here.\n\n```sh\n# a comment line\nfoo --a \\\n  --b   # says why\n$ bar '#not a comment'\n```\n\n```console\n$ baz\noutput line\n```\n\n```yaml\nkey: `quayside run --help`\n```\n";
        let got: Vec<(String, String)> = commands("x.md", md)
            .into_iter()
            .map(|f| (f.command, f.place))
            .collect();
        let want = [
            ("foo --a --b", "x.md:6"),
            ("bar '#not a comment'", "x.md:8"),
            ("baz", "x.md:12"),
            ("kubectl get components -A", "x.md:1"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(c, p)| (c.to_string(), p.to_string()))
            .collect();
        assert_eq!(got, want);
    }
}
