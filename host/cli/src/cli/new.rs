//! `agent-host plugins new`: writes a plugin project (Rust, Python, JavaScript or C) from the templates embedded at build time, with the host's own contract as wit/plugin.wit.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use serde_json::json;

use super::render::print_json;
use super::{EXIT_OK, Failure, escape};

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust with wit-bindgen (cargo, the wasm32-wasip2 target).
    Rust,
    /// Python with componentize-py.
    Python,
    /// JavaScript with jco + componentize-js (Node.js 20.19+).
    Js,
    /// C with wit-bindgen's C generator, zig cc and the WASI preview1 adapter.
    C,
}

impl Lang {
    fn dir(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Tools the model can call (world tool-plugin).
    Tool,
    /// Hooks into the agent loop (world extension-plugin).
    Extension,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Extension => "extension",
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  agent-host plugins new word-stats --lang python\n  \
cd word-stats && make && make check\n  agent-host --plugins word-stats/build tools list\n\n\
The new directory holds the source, manifest.toml, a Makefile whose `make toolchain` installs the \
pinned tool chain, a README, and wit/plugin.wit (this host's contract). docs/plugin-guide.md has a \
section per language."
)]
pub struct NewArgs {
    /// The plugin's name: 1-64 characters of a-z, 0-9 and '-', starting with a letter (the files are NAME.wasm and NAME.toml).
    pub name: String,
    /// Directory to create. Default: ./NAME. It must not exist, or be empty.
    pub dir: Option<PathBuf>,
    /// The language to write the plugin in.
    #[arg(long, value_enum, default_value = "rust")]
    pub lang: Lang,
    /// A tool plugin or an extension plugin.
    #[arg(long, value_enum, default_value = "tool")]
    pub kind: Kind,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &NewArgs) -> Result<u8, Failure> {
    if !agent_host_runtime::manifest::is_plugin_name(&args.name)
        || !args.name.starts_with(|c: char| c.is_ascii_lowercase())
    {
        return Err(Failure::usage(anyhow!(
            "'{}' cannot name a plugin: use 1-64 characters of a-z, 0-9 and '-', starting with a letter (for example word-stats)",
            escape::line(&args.name)
        )));
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && !is_empty_dir(&dir) {
        return Err(Failure::usage(anyhow!(
            "{} already exists and is not empty: choose another directory (the second argument) or remove it",
            dir.display()
        )));
    }
    let files = scaffold(&args.name, args.lang, args.kind);
    for (relative, contents) in &files {
        write_file(&dir.join(relative), contents).map_err(Failure::usage)?;
    }
    let mut written: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
    written.sort_unstable();
    if args.json {
        print_json(&json!({
            "name": args.name, "lang": args.lang.dir(), "kind": args.kind.dir(),
            "dir": dir, "files": written,
            "contract": format!("{}@{}", agent_host_runtime::CONTRACT_PACKAGE, agent_host_runtime::CONTRACT_VERSION),
        }));
        return Ok(EXIT_OK);
    }
    outln!(
        "created {} plugin '{}' ({}) in {}:",
        args.kind.dir(),
        args.name,
        args.lang.dir(),
        dir.display()
    );
    for path in written {
        outln!("  {path}");
    }
    outln!();
    outln!("next:");
    outln!("  cd {}", dir.display());
    outln!(
        "  make            # installs the pinned tool chain the first time, then builds build/{}.wasm",
        args.name
    );
    outln!(
        "  make check      # agent-host plugins check build/{}.wasm",
        args.name
    );
    outln!("  agent-host --plugins build tools list");
    outln!("README.md says more; docs/plugin-guide.md has a section per language.");
    Ok(EXIT_OK)
}

/// The files of a new plugin: the language's common files, then its kind's
/// (which win on the same path), then the contract, with the placeholders
/// filled in paths and contents.
pub fn scaffold(name: &str, lang: Lang, kind: Kind) -> Vec<(String, String)> {
    let snake = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{snake}}", &snake)
            .replace("{{contract}}", agent_host_runtime::CONTRACT_VERSION)
    };
    let mut files: Vec<(String, String)> = Vec::new();
    for part in ["common", kind.dir()] {
        for (file_lang, file_part, path, contents) in TEMPLATE_FILES {
            if *file_lang != lang.dir() || *file_part != part {
                continue;
            }
            let path = fill(path);
            files.retain(|(existing, _)| *existing != path);
            files.push((path, fill(contents)));
        }
    }
    files.push((
        "wit/plugin.wit".to_owned(),
        agent_host_runtime::CONTRACT_WIT.to_owned(),
    ));
    files
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    if path.extension().is_some_and(|ext| ext == "sh") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_and_kind_has_a_manifest_a_makefile_and_the_contract() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js, Lang::C] {
            for kind in [Kind::Tool, Kind::Extension] {
                let files = scaffold("my-tool", lang, kind);
                let has = |path: &str| files.iter().any(|(p, _)| p == path);
                for path in ["manifest.toml", "Makefile", "README.md", "wit/plugin.wit"] {
                    assert!(has(path), "{lang:?} {kind:?} has no {path}");
                }
                let manifest = &files.iter().find(|(p, _)| p == "manifest.toml").unwrap().1;
                assert!(
                    manifest.contains("name = \"my-tool\""),
                    "{lang:?} {kind:?}: {manifest}"
                );
                for (path, contents) in &files {
                    assert!(
                        !contents.contains("{{name}}") && !contents.contains("{{snake}}"),
                        "{lang:?} {kind:?} {path} has a placeholder left"
                    );
                }
            }
        }
    }
}
