//! Every shell command in README.md and docs/*.md is run here, or ends in a marker naming what it needs that a
//! test cannot have (docs/commands.md lists the markers). A document's blocks run in order, as bash scripts, in one
//! fresh folder per document, with the built `dept` first on PATH, the repository's `configs/` beside them and the
//! shared data at `../shared`.

mod common;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What a marked command may need. A marker naming anything else is an error, so the set stays closed.
const NEEDS: &[&str] = &[
    "cargo",
    "root",
    "weights",
    "gpu",
    "slurm",
    "bench-venv",
    "pytorch",
    "minutes",
];
/// The marker of a command CI runs (`cargo xtask test` and what it runs).
const RUNS_IN_CI: &str = "runs in CI";
/// Fence tags whose lines are shell commands.
const SHELL_TAGS: &[&str] = &["sh", "bash", "console", "shell"];

/// One shell command of a document: its physical lines joined by `\` continuations.
struct DocCommand {
    /// 1-based line of the command's first physical line.
    line: usize,
    text: String,
    /// `None`: the test runs it. `Some`: the marker that says why not.
    marker: Option<Marker>,
}

#[derive(Debug, PartialEq)]
enum Marker {
    RunsInCi,
    Needs(Vec<String>),
}

/// A problem in a document that fails the test before anything runs.
struct DocError {
    file: String,
    line: usize,
    message: String,
}

impl fmt::Display for DocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The problems, one per line, for a failure message.
fn listed(errors: &[DocError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, then docs/*.md in name order.
fn documents() -> Vec<PathBuf> {
    let root = repo_root();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|entry| entry.expect("docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

fn display_name(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The shell commands of one Markdown document, in order, or the problems found in its fences and markers.
fn commands_of(file: &str, text: &str) -> Result<Vec<DocCommand>, Vec<DocError>> {
    let mut commands = Vec::new();
    let mut errors = Vec::new();
    let error = |line: usize, message: String| DocError {
        file: file.to_string(),
        line,
        message,
    };
    // (tag, line of the opening fence) while inside a fence.
    let mut fence: Option<(String, usize)> = None;
    // A command whose last line ended in `\`: its first line and the text so far.
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        match &fence {
            None => {
                if let Some(tag) = trimmed.strip_prefix("```") {
                    let tag = tag.trim().to_string();
                    if tag.is_empty() {
                        errors.push(error(
                            number,
                            "a fenced block without a tag: tag shell blocks `sh` and others `text`, `yaml`, …"
                                .into(),
                        ));
                    }
                    fence = Some((tag, number));
                }
                continue;
            }
            Some(_) if trimmed == "```" => {
                if let Some((line, _)) = pending.take() {
                    errors.push(error(line, "the command's last line ends in `\\`".into()));
                }
                fence = None;
                continue;
            }
            Some((tag, _)) => {
                if !SHELL_TAGS.contains(&tag.as_str()) {
                    continue;
                }
                let line_text = if tag == "console" {
                    match (trimmed.strip_prefix("$ "), &pending) {
                        (Some(command), _) => command,
                        (None, Some(_)) => trimmed,
                        (None, None) => continue, // output
                    }
                } else {
                    trimmed
                };
                if pending.is_none() && (line_text.is_empty() || line_text.starts_with('#')) {
                    continue;
                }
                let (first, mut so_far) = pending.take().unwrap_or((number, String::new()));
                if let Some(head) = line_text.strip_suffix('\\') {
                    so_far.push_str(head);
                    so_far.push(' ');
                    pending = Some((first, so_far));
                    continue;
                }
                so_far.push_str(line_text);
                match marker_of(&so_far) {
                    Ok(marker) => commands.push(DocCommand {
                        line: first,
                        text: so_far,
                        marker,
                    }),
                    Err(NotAMarker(message)) => errors.push(error(number, message)),
                }
            }
        }
    }
    if let Some((_, line)) = fence {
        errors.push(error(line, "this fenced block is never closed".into()));
    }
    if errors.is_empty() {
        Ok(commands)
    } else {
        Err(errors)
    }
}

/// Why a trailing comment that looks like a marker is not one.
struct NotAMarker(String);

/// The marker a command ends in, if any: `# runs in CI` or `# needs: a, b`. Other trailing comments are free text.
fn marker_of(command: &str) -> Result<Option<Marker>, NotAMarker> {
    let Some(hash) = command.rfind(" #") else {
        return Ok(None);
    };
    let comment = command[hash + 2..].trim();
    if comment == RUNS_IN_CI {
        return Ok(Some(Marker::RunsInCi));
    }
    let Some(list) = comment.strip_prefix("needs:") else {
        if comment.starts_with("need") || comment.eq_ignore_ascii_case(RUNS_IN_CI) {
            return Err(NotAMarker(format!(
                "`# {comment}` is not a marker: write `# needs: <{}>` or `# {RUNS_IN_CI}`",
                NEEDS.join("|")
            )));
        }
        return Ok(None);
    };
    let needs: Vec<String> = list.split(',').map(|n| n.trim().to_string()).collect();
    if let Some(unknown) = needs.iter().find(|n| !NEEDS.contains(&n.as_str())) {
        return Err(NotAMarker(format!(
            "`# needs: {unknown}` is not one of the markers ({}); add it to docs/commands.md and this test, or run \
             the command",
            NEEDS.join(", ")
        )));
    }
    Ok(Some(Marker::Needs(needs)))
}

/// Every document's commands, or a panic listing every problem with its file and line.
fn all_commands() -> Vec<(PathBuf, Vec<DocCommand>)> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for path in documents() {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        match commands_of(&display_name(&path), &text) {
            Ok(commands) => found.push((path, commands)),
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    assert!(errors.is_empty(), "{}", listed(&errors));
    found
}

#[test]
fn every_fence_is_tagged_and_every_marker_is_known() {
    let docs = all_commands();
    let mut runnable = 0;
    let mut marked = 0;
    for (path, commands) in &docs {
        let here = commands.iter().filter(|c| c.marker.is_none()).count();
        println!(
            "{}: {here} run, {} marked",
            display_name(path),
            commands.len() - here
        );
        runnable += here;
        marked += commands.len() - here;
    }
    println!("all documents: {runnable} run, {marked} marked");
    assert!(
        docs.iter()
            .any(|(path, commands)| path.ends_with("README.md")
                && commands.iter().any(|c| c.marker.is_none())),
        "README.md's tour must have commands the test runs"
    );
}

#[test]
fn the_parser_finds_commands_markers_and_mistakes() {
    let doc = "text\n```sh\n# a comment\ndept env\ndept train a \\\n    --set b=1   # needs: weights, gpu\n\
               cargo xtask test  # runs in CI\necho '#' # free text\n```\n```console\n$ dept budget --l 1\n\
               output line\n```\n```yaml\nkey: value\n```\n";
    let commands =
        commands_of("doc.md", doc).unwrap_or_else(|errors| panic!("{}", listed(&errors)));
    let seen: Vec<(usize, &str, &Option<Marker>)> = commands
        .iter()
        .map(|c| (c.line, c.text.as_str(), &c.marker))
        .collect();
    assert_eq!(
        seen.len(),
        5,
        "{:?}",
        seen.iter().map(|s| s.1).collect::<Vec<_>>()
    );
    assert_eq!((seen[0].0, seen[0].1), (4, "dept env"));
    assert_eq!(seen[1].0, 5);
    assert_eq!(
        seen[1].2,
        &Some(Marker::Needs(vec!["weights".into(), "gpu".into()]))
    );
    assert_eq!(seen[2].2, &Some(Marker::RunsInCi));
    assert_eq!(seen[3].2, &None);
    assert_eq!((seen[4].0, seen[4].1), (11, "dept budget --l 1"));

    let mistakes =
        "```\nls\n```\n```sh\ndept x  # needs: wheights\ndept y  # need: gpu\n```\n```sh\necho\n";
    let errors = commands_of("bad.md", mistakes)
        .err()
        .expect("mistakes are errors");
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [1, 5, 6, 8], "{}", listed(&errors));
}

/// The script of one document: its runnable commands in order, each after a line that records where it came
/// from, so a failure names the document's line.
fn script_of(file: &str, commands: &[DocCommand]) -> String {
    let mut script = String::from("set -euo pipefail\n");
    script.push_str(&format!(
        "trap 'echo \"docs_commands: {file}:$doc_line failed (status $?)\" >&2' ERR\n"
    ));
    for command in commands.iter().filter(|c| c.marker.is_none()) {
        let shown = format!("+ {file}:{}: {}", command.line, command.text);
        script.push_str(&format!(
            "doc_line={}\nprintf '%s\\n' '{}' >&2\n{}\n",
            command.line,
            shown.replace('\'', "'\\''"),
            command.text
        ));
    }
    script
}

/// `<tmp>/shared` links to the shared folder and `<tmp>/work` (the working folder) holds a link to `configs/`, so
/// the documents' `../shared/data` and `configs/…` resolve as they do in a checkout beside the shared folder.
fn workspace_for(shared: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temporary folder");
    std::os::unix::fs::symlink(shared, tmp.path().join("shared")).expect("link shared");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).expect("create work folder");
    std::os::unix::fs::symlink(repo_root().join("configs"), work.join("configs"))
        .expect("link configs");
    (tmp, work)
}

#[test]
fn the_documented_commands_run() {
    let docs = all_commands();
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let shared = shared.canonicalize().expect("canonical shared folder");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_dept"));
    let bin_dir = binary.parent().expect("binary folder");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run_count =
        |commands: &[DocCommand]| commands.iter().filter(|c| c.marker.is_none()).count();
    let mut runnable: Vec<&(PathBuf, Vec<DocCommand>)> = docs
        .iter()
        .filter(|(_, commands)| run_count(commands) > 0)
        .collect();
    // The longest first (docs/training.md), so the other worker takes the rest meanwhile.
    runnable.sort_by_key(|(_, commands)| std::cmp::Reverse(run_count(commands)));
    // Two documents at a time: much of a tiny run is single-threaded (tokenising, the decoding loop), so two
    // keep two cores busy and the whole test near a minute and a half on a 2-core machine.
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some((doc, commands)) = runnable.get(next.fetch_add(1, Ordering::SeqCst))
                {
                    if let Err(DocFailure(failure)) = run_document(doc, commands, &shared, &path) {
                        failures.lock().expect("failures lock").push(failure);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("failures lock");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A document whose script failed: its name, the status and the end of its output.
struct DocFailure(String);

/// Runs one document's commands in a fresh folder; `Err` with the status and the end of its output on failure.
fn run_document(
    doc: &Path,
    commands: &[DocCommand],
    shared: &Path,
    path: &str,
) -> Result<(), DocFailure> {
    let file = display_name(doc);
    let (_tmp, work) = workspace_for(shared);
    let started = Instant::now();
    let output = Command::new("bash")
        .arg("-c")
        .arg(script_of(&file, commands))
        .current_dir(&work)
        .env("PATH", path)
        .env_remove("DEPT_LOG")
        .output()
        .expect("run bash");
    println!("{file}: {:.1} s", started.elapsed().as_secs_f64());
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    Err(DocFailure(format!(
        "{file}: {}\n--- stdout (end) ---\n{}\n--- stderr (end) ---\n{}",
        output.status,
        tail(&stdout, 3000),
        tail(&stderr, 6000)
    )))
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
