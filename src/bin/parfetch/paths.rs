//! The files a run reads and writes must be different files: writing the
//! output over the input (or the summary or the failed list over either)
//! would lose it, so such a run is refused before it starts.

use std::path::{Path, PathBuf};

use crate::args::Args;

/// Checks that `-i`, `-o`, `--summary-json` and `--failed` name different
/// files (devices and pipes, such as `/dev/null`, may be named twice).
pub(crate) fn distinct(args: &Args) -> Result<(), String> {
    fn file(path: Option<&PathBuf>) -> Option<&Path> {
        path.map(PathBuf::as_path)
            .filter(|path| *path != Path::new("-"))
            .filter(|path| std::fs::metadata(path).map_or(true, |found| found.is_file()))
    }
    let files: [(&str, Option<&Path>); 4] = [
        ("-i", file(args.input.as_ref())),
        ("-o", file(args.output.as_ref())),
        ("--summary-json", file(args.summary_json.as_ref())),
        ("--failed", file(args.failed.as_ref())),
    ];
    for (i, (flag, path)) in files.iter().enumerate() {
        for (other_flag, other) in &files[..i] {
            if let (Some(path), Some(other)) = (path, other) {
                if same_file(path, other) {
                    return Err(format!(
                        "{flag} {} is also the {other_flag} file: name another file",
                        path.display()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether `a` and `b` name one file: once both exist, the same file
/// (through links too); else the same file name in the same directory.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        use std::os::unix::fs::MetadataExt;
        return (a.dev(), a.ino()) == (b.dev(), b.ino());
    }
    #[cfg(not(unix))]
    if let (Ok(a), Ok(b)) = (a.canonicalize(), b.canonicalize()) {
        return a == b;
    }
    let resolved = |path: &Path| -> Option<PathBuf> {
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(dir.canonicalize().ok()?.join(path.file_name()?))
    };
    match (resolved(a), resolved(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}
