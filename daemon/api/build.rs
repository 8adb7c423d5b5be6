//! Embeds the built web UI (`webui/dist`, made by `npm ci && npm run build` in `webui/`, which
//! `make` runs before cargo) into the roomd binary: it generates a table of every file with its
//! bytes (`include_bytes!`) and content type, so roomd serves its pages without reading the disk
//! and without a dependency for it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dist = manifest.join("../../webui/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rerun-if-env-changed=ROOMD_WEBUI_DIST");
    let dist = std::env::var_os("ROOMD_WEBUI_DIST")
        .map(PathBuf::from)
        .unwrap_or(dist);
    let index = dist.join("index.html");
    if !index.is_file() {
        eprintln!(
            "error: the web UI is not built: {} is missing.\n\
             Build it first: `cd webui && npm ci && npm run build` (or `make build`, which does it).",
            index.display()
        );
        std::process::exit(1);
    }
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    let mut out = String::from(
        "/// Every file of the built web UI: (path below dist/, content type, bytes).\n\
         pub(crate) static FILES: &[(&str, &str, &[u8])] = &[\n",
    );
    for (relative, absolute) in &files {
        println!("cargo:rerun-if-changed={}", absolute.display());
        let _ = writeln!(
            out,
            "    ({relative:?}, {:?}, include_bytes!({:?})),",
            content_type(relative),
            absolute.display().to_string()
        );
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("webui_files.rs");
    if let Err(e) = std::fs::write(&target, out) {
        eprintln!("error: cannot write {}: {e}", target.display());
        std::process::exit(1);
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", dir.display());
            std::process::exit(1);
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            files.push((relative.to_string_lossy().into_owned(), path.clone()));
        }
    }
}

/// Content types of what Vite emits; anything else is served as bytes, never sniffed.
fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
