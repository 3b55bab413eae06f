//! The README and the guide (`docs/*.md`) lead somewhere: every relative
//! link reaches a file (and a heading, when it names one), and every file
//! of the repository they name in backticks or links still exists; so do
//! the files the crate docs name. Moving or renaming a file makes this fail
//! with the page and line to fix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where paths named in backticks start from (the repository's root): a
/// name starting with one of these is taken for a file of the repository.
const REPOSITORY_FOLDERS: [&str; 5] = ["src/", "tests/", "examples/", "benches/", "docs/"];

/// Pages linked before they exist, because another branch is writing them
/// (issue 24: the architecture page comes with the move of `src/` into
/// folders). Once the file is there, remove it from this list: the test
/// says so.
const PENDING: [&str; 0] = [];

/// The repository's root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pages checked: the README and every Markdown file of `docs/`, as
/// paths from the root.
fn pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_string()];
    let mut guide: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ can be read")
        .map(|entry| entry.expect("a docs/ entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| is_markdown(Path::new(name)))
        .map(|name| format!("docs/{name}"))
        .collect();
    guide.sort();
    pages.extend(guide);
    pages
}

/// What one page refers to.
#[derive(Debug, Default)]
struct References {
    /// (line, target) of each Markdown link, image and link definition.
    links: Vec<(usize, String)>,
    /// (line, path) of each inline code span that names a repository path.
    paths: Vec<(usize, String)>,
}

/// The links and repository paths of a Markdown text. Fenced code blocks
/// are skipped (they hold commands and output, not references); inline
/// code is read for paths, and is not a link.
fn references(text: &str) -> References {
    let mut found = References::default();
    let mut fenced = false;
    // A code span may wrap onto the next line, never past a paragraph.
    let mut in_code = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if line.trim().is_empty() {
            in_code = false;
        }
        if fenced {
            continue;
        }
        // Pieces between backticks alternate between prose and code.
        let mut prose = String::new();
        for (piece, part) in line.split('`').enumerate() {
            if piece > 0 {
                in_code = !in_code;
            }
            if !in_code {
                prose.push_str(part);
                prose.push(' ');
            } else if let Some(path) = repository_path(part) {
                found.paths.push((number, path));
            }
        }
        // Inline links and images: `](target)` or `](target "title")`.
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest.find([')', ' ']).unwrap_or(rest.len());
            found.links.push((number, rest[..end].to_string()));
        }
        // Link definitions: `[name]: target`.
        let trimmed = prose.trim_start();
        if let Some(definition) = trimmed.strip_prefix('[') {
            if let Some((_, target)) = definition.split_once("]: ") {
                let target = target.split_whitespace().next().unwrap_or_default();
                found.links.push((number, target.to_string()));
            }
        }
    }
    found
}

/// The repository path a code span names, if it names one: its leading
/// run of path characters (so `src/…` is `src/`).
fn repository_path(code: &str) -> Option<String> {
    REPOSITORY_FOLDERS
        .iter()
        .any(|folder| code.starts_with(folder))
        .then(|| {
            code.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
                .collect()
        })
}

/// GitHub's anchors for the headings of a Markdown text: lower case,
/// spaces as hyphens, other punctuation dropped; a repeated heading gets
/// `-1`, `-2`, ...
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let heading = line.trim_start_matches('#');
        if fenced || heading.len() == line.len() || !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let count = seen.entry(slug.clone()).or_default();
        anchors.push(if *count == 0 {
            slug
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// What is wrong with the references of the page `page` (a path from
/// `root`) whose text is `text`: one line each, naming the page and line.
fn problems(root: &Path, page: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let folder = Path::new(page).parent().unwrap_or(Path::new(""));
    let found = references(text);
    for (line, target) in &found.links {
        let external = ["http://", "https://", "mailto:"]
            .iter()
            .any(|scheme| target.starts_with(scheme));
        if external || target.is_empty() {
            continue;
        }
        let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
        let path = if file.is_empty() {
            PathBuf::from(page)
        } else {
            normalise(&folder.join(file))
        };
        let shown = path.to_string_lossy().replace('\\', "/");
        if PENDING.contains(&shown.as_str()) && !root.join(&path).exists() {
            continue;
        }
        let Ok(linked) = std::fs::metadata(root.join(&path)) else {
            problems.push(format!(
                "{page}:{line}: the link ({target}) leads nowhere: no {shown}"
            ));
            continue;
        };
        if anchor.is_empty() || !linked.is_file() || !is_markdown(&path) {
            continue;
        }
        let linked_text = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
        if !anchors(&linked_text).iter().any(|a| a == anchor) {
            problems.push(format!(
                "{page}:{line}: the link ({target}) names a heading {shown} does not have"
            ));
        }
    }
    for (line, path) in &found.paths {
        if !root.join(path).exists() {
            problems.push(format!(
                "{page}:{line}: `{path}` names a file that does not exist"
            ));
        }
    }
    problems
}

/// Whether `path` is a Markdown file (`.md`, in any case).
fn is_markdown(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("md"))
}

/// `a/../b` as `b`, so that links out of `docs/` read as paths from the root.
fn normalise(path: &Path) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::CurDir => {}
            other => parts.push(other.as_os_str()),
        }
    }
    parts.iter().collect()
}

#[test]
fn links_resolve_and_named_files_exist() {
    let root = root();
    let pages = pages();
    // The README and at least the guide's index and its pages.
    assert!(pages.len() >= 10, "pages found: {pages:?}");
    let (mut links, mut paths, mut all) = (0, 0, Vec::new());
    for page in &pages {
        let text = std::fs::read_to_string(root.join(page)).expect("the page can be read");
        let found = references(&text);
        links += found.links.len();
        paths += found.paths.len();
        all.extend(problems(&root, page, &text));
    }
    // The crate docs name the guide's pages too; their links are rustdoc's
    // (checked by `cargo doc`), so only the paths are read here.
    let mut crate_docs = String::new();
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("src/lib.rs can be read");
    for line in lib.lines().filter_map(|line| line.strip_prefix("//!")) {
        crate_docs.push_str(line.strip_prefix(' ').unwrap_or(line));
        crate_docs.push('\n');
    }
    let named = references(&crate_docs).paths;
    assert!(named.len() >= 8, "the crate docs name {named:?}");
    for (line, path) in named {
        if !root.join(&path).exists() {
            all.push(format!(
                "src/lib.rs (crate docs, line {line}): `{path}` names a file that does not exist"
            ));
        }
    }
    // So that a reader that found nothing cannot pass for one that checked.
    assert!(
        links >= 20 && paths >= 20,
        "{links} links and {paths} paths read"
    );
    assert!(all.is_empty(), "broken references:\n{}", all.join("\n"));
}

#[test]
fn pending_pages_are_still_missing() {
    for page in PENDING {
        assert!(
            !root().join(page).exists(),
            "{page} exists now: remove it from PENDING in tests/it/docs.rs"
        );
    }
}

#[test]
fn the_check_catches_broken_links_stale_names_and_missing_headings() {
    let root = root();
    let text = "# Title\n\
        See [the cache](cache.md), [its rules](cache.md#the-response-cache), \
        [nothing](gone.md) and [no heading](cache.md#no-such-heading).\n\
        The code is in `src/lib.rs` and `src/no_such_file.rs`; `cargo bench\n\
        --bench fetch` is no path, and [this](gone-too.md) a link.\n\
        ```sh\n\
        cat src/also_missing_but_in_a_fence.rs\n\
        ```\n\
        [ureq]: https://crates.io/crates/ureq\n\
        [old]: ../examples/perf.rs\n";
    let problems = problems(&root, "docs/example.md", text);
    assert_eq!(
        problems,
        [
            "docs/example.md:2: the link (gone.md) leads nowhere: no docs/gone.md",
            "docs/example.md:2: the link (cache.md#no-such-heading) names a heading docs/cache.md does not have",
            "docs/example.md:4: the link (gone-too.md) leads nowhere: no docs/gone-too.md",
            "docs/example.md:9: the link (../examples/perf.rs) leads nowhere: no examples/perf.rs",
            "docs/example.md:3: `src/no_such_file.rs` names a file that does not exist",
        ]
    );
}
