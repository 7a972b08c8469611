//! Embeds the plugin scaffolds of `agent-host plugins new` (templates/<lang>/<part>/...) and the files they share with the repository's own plugins (tool-chain pins, the C JSON reader).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Files a scaffold takes from the repository's own plugins rather than
/// from its template, so a new plugin gets exactly what the examples are
/// built and tested with (the tool-chain pins, the C JSON reader):
/// (language, path in the scaffold, path under plugins/).
const SHARED_FILES: &[(&str, &str, &str)] = &[
    (
        "python",
        "requirements.txt",
        "toolchains/python/requirements.txt",
    ),
    ("js", "toolchain/package.json", "toolchains/js/package.json"),
    (
        "js",
        "toolchain/package-lock.json",
        "toolchains/js/package-lock.json",
    ),
    ("c", "toolchain/versions.env", "toolchains/c/versions.env"),
    ("c", "toolchain/setup.sh", "toolchains/setup-c.sh"),
    ("c", "src/json.c", "c/checksum/src/json.c"),
    ("c", "src/json.h", "c/checksum/src/json.h"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let templates = manifest_dir.join("templates");
    let shared = manifest_dir.join("../../plugins");
    println!("cargo:rerun-if-changed={}", templates.display());

    let mut entries = Vec::new();
    for lang in sorted_dirs(&templates) {
        let lang_name = file_name(&lang);
        for part in sorted_dirs(&lang) {
            let part_name = file_name(&part);
            let mut files = Vec::new();
            walk(&part, &mut files);
            for file in files {
                let relative = file
                    .strip_prefix(&part)
                    .expect("walked below it")
                    .to_string_lossy()
                    .replace('\\', "/");
                println!("cargo:rerun-if-changed={}", file.display());
                entries.push((lang_name.clone(), part_name.clone(), relative, file));
            }
        }
    }
    for (lang, relative, source) in SHARED_FILES {
        let file = shared.join(source);
        assert!(
            file.is_file(),
            "{} is missing (SHARED_FILES in host/cli/build.rs)",
            file.display()
        );
        println!("cargo:rerun-if-changed={}", file.display());
        // One copy only: a template must not carry its own.
        assert!(
            !entries
                .iter()
                .any(|(l, _, r, _)| l == lang && r == relative),
            "templates/{lang}/ has its own {relative}: delete it, the scaffold takes plugins/{source}"
        );
        entries.push((
            (*lang).to_owned(),
            "common".to_owned(),
            (*relative).to_owned(),
            file,
        ));
    }

    let mut out = String::from(
        "/// (language, part: common | tool | extension, path in the new plugin, contents)\n\
         pub static TEMPLATE_FILES: &[(&str, &str, &str, &str)] = &[\n",
    );
    for (lang, part, relative, file) in &entries {
        let path = file.canonicalize().expect("exists");
        writeln!(
            out,
            "    ({lang:?}, {part:?}, {relative:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("templates.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a directory entry has a name")
        .to_string_lossy()
        .into_owned()
}
