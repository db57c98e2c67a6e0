//! The docs kept true by tests (issue #34): the README's quick start runs as
//! it is shown (its commands against the real gateway on 127.0.0.1:0, the
//! output's lines in the README's order), every config field of the JSON
//! Schema is named in `docs/config.md`, and every relative link of the
//! README, the changelog and `docs/` leads to a file and heading that exist.
//!
//! The README's sample output is real output of an earlier run; its figures
//! change from run to run, so a line is matched by its label (the text
//! before its first digit, up to its first colon), in order.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use userflux::{Gateway, bin, output_within};

/// The repository's root (the root package's manifest directory).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of a Markdown file outside its fenced code blocks.
fn prose(md: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The fenced code blocks of a Markdown file whose info string is `info`.
fn code_blocks(md: &str, info: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut fenced = false;
    for line in md.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("```") {
            if fenced {
                if let Some(b) = current.take() {
                    blocks.push(b);
                }
            } else if rest.trim() == info {
                current = Some(Vec::new());
            }
            fenced = !fenced;
        } else if let Some(b) = current.as_mut() {
            b.push(line.to_string());
        }
    }
    blocks
}

/// One `$ command` of a console block and the output shown under it.
struct Shown {
    command: String,
    output: Vec<String>,
}

/// The console session in the README that holds a command starting with
/// `prefix`, as commands and their output.
fn session(readme: &str, prefix: &str) -> Vec<Shown> {
    let block = code_blocks(readme, "console")
        .into_iter()
        .find(|b| b.iter().any(|l| l.starts_with(&format!("$ {prefix}"))))
        .unwrap_or_else(|| panic!("README.md: no console block with `$ {prefix}`"));
    let mut shown: Vec<Shown> = Vec::new();
    for line in block {
        if let Some(cmd) = line.strip_prefix("$ ") {
            shown.push(Shown {
                command: cmd.to_string(),
                output: Vec::new(),
            });
        } else {
            shown
                .last_mut()
                .expect("a console block starts with a command")
                .output
                .push(line);
        }
    }
    shown
}

/// A command's words; the README's quick-start commands hold no quoting.
fn words(command: &str) -> Vec<String> {
    assert!(
        !command.contains(['\'', '"', '\\']),
        "quick-start command {command:?} has quoting this test does not parse"
    );
    command.split_whitespace().map(String::from).collect()
}

/// A shown output line's label: the text before its first digit, cut after
/// its first colon, spaces collapsed; empty for a line that starts with a
/// figure (a run id, a count).
fn label(line: &str) -> String {
    let collapsed = line.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut text: String = collapsed
        .chars()
        .take_while(|c| !c.is_ascii_digit())
        .collect();
    if let Some(i) = text.find(':') {
        text.truncate(i + 1);
    }
    text.trim().to_string()
}

/// Every labelled line the README shows appears in `actual`, in the same
/// order (as the start of a line, spaces collapsed).
fn assert_same_shape(what: &str, shown: &[String], actual: &str) {
    let lines: Vec<String> = actual
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let mut at = 0;
    for want in shown.iter().map(|l| label(l)).filter(|l| !l.is_empty()) {
        match lines[at..].iter().position(|l| l.starts_with(&want)) {
            Some(i) => at += i + 1,
            None => panic!(
                "{what}: the README shows a line starting {want:?} that the real output lacks \
                 (or has earlier):\n{actual}"
            ),
        }
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The run directory the human summary names, relative to `cwd`.
fn run_directory(cwd: &Path, stdout: &str) -> PathBuf {
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Run directory: "))
        .unwrap_or_else(|| panic!("no `Run directory:` line in {stdout}"));
    cwd.join(dir.trim())
}

#[test]
fn the_readmes_engine_quick_start_runs_as_shown() {
    let readme = read(&root().join("README.md"));
    let shown = session(&readme, "userflux-engine run ");
    let [gateway, run] = &shown[..] else {
        panic!("the engine's quick start is the gateway's start and one run");
    };
    // The gateway's command is what Gateway::start runs, on a free port.
    assert_eq!(
        words(&gateway.command),
        ["userflux-gateway", "--listen", "127.0.0.1:8080", "&"]
    );
    assert_eq!(gateway.output, ["listening on 127.0.0.1:8080"]);
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());

    // The README's run, against that gateway, for 2 s instead of its 10 s.
    let mut args = words(&run.command);
    assert_eq!(args.remove(0), "userflux-engine");
    let mut swapped = 0;
    for i in 0..args.len() {
        if let Some(path) = args[i].strip_prefix("http://127.0.0.1:8080") {
            args[i] = format!("{}{path}", gw.url());
            swapped += 1;
        }
        if args[i] == "-d" {
            args[i + 1] = "2s".into();
            swapped += 1;
        }
    }
    assert_eq!(
        swapped, 2,
        "the README's run has a demo URL and a -d: {args:?}"
    );
    let out = output_within(
        Command::new(bin("userflux-engine"))
            .args(&args)
            .current_dir(tmp.path()),
        Duration::from_secs(60),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
    assert_same_shape("userflux-engine run", &run.output, &stdout);
    let dir = run_directory(tmp.path(), &stdout);
    assert!(
        dir.join("summary.json").is_file(),
        "{} has no summary.json",
        dir.display()
    );
    assert!(
        dir.starts_with(tmp.path().join("runs")),
        "the quick form writes into runs/ of the working directory: {}",
        dir.display()
    );
}

/// `userfluxctl daemon stop` in `cwd` when dropped, so a failed assertion
/// leaves no daemon behind.
struct StopDaemon<'a>(&'a Path);

impl Drop for StopDaemon<'_> {
    fn drop(&mut self) {
        let _ = Command::new(bin("userfluxctl"))
            .args(["daemon", "stop"])
            .current_dir(self.0)
            .env_remove("USERFLUX_SOCKET")
            .output();
    }
}

#[test]
fn the_readmes_daemon_quick_start_runs_as_shown() {
    let readme = read(&root().join("README.md"));
    let shown = session(&readme, "userfluxctl run start ");
    let [start, run] = &shown[..] else {
        panic!("the daemon's quick start is `daemon start` and one `run start`");
    };
    assert_eq!(words(&start.command), ["userfluxctl", "daemon", "start"]);
    let tmp = tempfile::tempdir().unwrap();
    let gw = Gateway::start(None, tmp.path());

    // examples/demo.json as it is, but for its 15 s of stages: 2 s.
    let mut args = words(&run.command);
    let config = args
        .iter()
        .position(|a| a.ends_with(".json"))
        .expect("the README's run names a config");
    let mut demo: serde_json::Value =
        serde_json::from_str(&read(&root().join(&args[config]))).unwrap();
    demo["stages"] =
        serde_json::json!([{"duration": "1s", "target": 8}, {"duration": "1s", "target": 8}]);
    let copy = tmp.path().join(&args[config]);
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::write(&copy, demo.to_string()).unwrap();
    let target = args.iter().position(|a| a == "--target").unwrap() + 1;
    assert_eq!(args[target], "http://127.0.0.1:8080");
    args[target] = gw.url();
    assert_eq!(args.remove(0), "userfluxctl");

    let ctl = |args: &[String]| {
        output_within(
            Command::new(bin("userfluxctl"))
                .args(args)
                .current_dir(tmp.path())
                .env_remove("USERFLUX_SOCKET"),
            Duration::from_secs(60),
        )
    };
    let started = ctl(&["daemon".into(), "start".into()]);
    let _stop = StopDaemon(tmp.path());
    let (stdout, stderr) = text(&started);
    assert!(started.status.success(), "daemon start: {stdout}{stderr}");
    assert_same_shape("userfluxctl daemon start", &start.output, &stdout);

    let out = ctl(&args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
    assert_same_shape("userfluxctl run start", &run.output, &stdout);
    let runs: Vec<_> = std::fs::read_dir(tmp.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("summary.json").is_file())
        .collect();
    assert_eq!(runs.len(), 1, "one run with a summary in runs/: {runs:?}");
}

/// Every property name of every object in a JSON Schema (`$defs` included),
/// with a place where it occurs.
fn schema_fields(v: &serde_json::Value, at: &str, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let here = format!("{at}/{key}");
                if key == "properties"
                    && let Some(props) = value.as_object()
                {
                    for (name, spec) in props {
                        out.entry(name.clone())
                            .or_insert_with(|| format!("{here}/{name}"));
                        schema_fields(spec, &format!("{here}/{name}"), out);
                    }
                    continue;
                }
                schema_fields(value, &here, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                schema_fields(item, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The inline code spans of a Markdown text (fenced blocks left out).
fn code_spans(md: &str) -> Vec<String> {
    prose(md)
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// Whether a code span names the field `name`: `name`, or a path ending in
/// it (`tls.ca_file`, `endpoints[].rate_stages[]`).
fn names_field(span: &str, name: &str) -> bool {
    let span = span.trim_end_matches("[]");
    span == name
        || span
            .strip_suffix(name)
            .is_some_and(|head| head.ends_with('.'))
}

fn undocumented(schema: &serde_json::Value, doc: &str) -> Vec<String> {
    let mut fields = BTreeMap::new();
    schema_fields(schema, "#", &mut fields);
    assert!(fields.len() > 50, "the schema walk found {fields:?}");
    let spans = code_spans(doc);
    fields
        .into_iter()
        .filter(|(name, _)| !spans.iter().any(|s| names_field(s, name)))
        .map(|(name, at)| format!("`{name}` ({at})"))
        .collect()
}

#[test]
fn the_config_reference_names_every_field_of_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&read(&root().join("schemas/config.schema.json"))).unwrap();
    let doc = read(&root().join("docs/config.md"));
    let missing = undocumented(&schema, &doc);
    assert!(
        missing.is_empty(),
        "docs/config.md does not name these config fields (as `name` or `path.name` in \
         backticks, outside code blocks): {}",
        missing.join(", ")
    );

    // The check can fail: a field added to the schema without docs is named.
    let mut grown = schema.clone();
    grown["$defs"]["Endpoint"]["properties"]["not_documented_anywhere"] =
        serde_json::json!({"type": "string"});
    let missing = undocumented(&grown, &doc);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].contains("not_documented_anywhere"),
        "{missing:?}"
    );
}

/// The fields the rows of `docs/config.md`'s field tables (those headed
/// `| field | default | meaning |`) name in their first cell.
fn table_fields(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_table = false;
    for line in prose(doc).lines() {
        if line.starts_with("| field | default | meaning |") {
            in_table = true;
        } else if !line.starts_with('|') {
            in_table = false;
        } else if in_table && !line.starts_with("|---") {
            let first = line.split('|').nth(1).unwrap_or("");
            out.extend(first.split('`').skip(1).step_by(2).map(String::from));
        }
    }
    out
}

#[test]
fn the_config_reference_names_no_field_the_schema_lacks() {
    let schema: serde_json::Value =
        serde_json::from_str(&read(&root().join("schemas/config.schema.json"))).unwrap();
    let mut fields = BTreeMap::new();
    schema_fields(&schema, "#", &mut fields);
    let doc = read(&root().join("docs/config.md"));
    let named = table_fields(&doc);
    assert!(named.len() > 50, "the field tables name {named:?}");
    let stale: Vec<&String> = named
        .iter()
        .filter(|path| {
            let last = path.trim_end_matches("[]").rsplit('.').next().unwrap_or("");
            !fields.contains_key(last.trim_end_matches("[]"))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "docs/config.md's field tables name fields the schema does not have: {stale:?}"
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (a repeated one gets `-1`, …).
fn anchors(md: &str) -> HashSet<String> {
    let mut seen = BTreeMap::<String, usize>::new();
    let mut out = HashSet::new();
    for line in prose(md).lines() {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            let base = slug(&line[hashes..]);
            let n = seen.entry(base.clone()).or_insert(0);
            out.insert(if *n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            });
            *n += 1;
        }
    }
    out
}

/// The targets of a Markdown text's inline links and images, `](…)`.
fn link_targets(md: &str) -> Vec<String> {
    let text = prose(md);
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// The README, the changelog and every page of docs/.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("CHANGELOG.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn every_relative_link_leads_to_a_file_and_heading() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let md = read(&file);
        let name = file.strip_prefix(root()).unwrap().display().to_string();
        let targets = link_targets(&md);
        for target in &targets {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let dest = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !dest.exists() {
                broken.push(format!("{name}: {target}: no such file"));
            } else if !anchor.is_empty() && !anchors(&read(&dest)).contains(anchor) {
                broken.push(format!("{name}: {target}: no such heading"));
            }
        }
        if name == "README.md" {
            // the first screen links every page of the reference
            for page in markdown_files() {
                let page = page.strip_prefix(root()).unwrap().display().to_string();
                if page.starts_with("docs/") && !targets.contains(&page) {
                    broken.push(format!("README.md does not link {page}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn labels_and_slugs_read_as_github_and_the_readme_do() {
    assert_eq!(
        label("Userflux run 20261203-081048-39f0 (quick) finished"),
        "Userflux run"
    );
    assert_eq!(label("Errors: status: 45"), "Errors:");
    assert_eq!(label("  default     197994  19799.4"), "default");
    assert_eq!(label("20261203-081013-407a  finished"), "");
    assert_eq!(
        slug("Capacity search: how much within the SLO"),
        "capacity-search-how-much-within-the-slo"
    );
    assert_eq!(
        slug("Beyond one machine: shards, merge, Kubernetes"),
        "beyond-one-machine-shards-merge-kubernetes"
    );
    assert_eq!(slug("samples.ndjson"), "samplesndjson");
    assert!(names_field("endpoints[].rate_stages[]", "rate_stages"));
    assert!(names_field("tls.ca_file", "ca_file"));
    assert!(!names_field("max_vus", "vus"));
}
