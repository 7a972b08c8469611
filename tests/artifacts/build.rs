//! Builds the guest plugins for wasm32-wasip2 (a nested cargo), lays them out as `<name>.wasm` + `<name>.toml`, and generates their paths and `foreach_*` lists.
//!
//! The nested cargo gets its own target directory (`<target-dir>/guests`), so it
//! never waits on the lock the outer build holds, and `make plugins` reads the
//! same layout instead of building the guests a second time.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const WASM_TARGET: &str = "wasm32-wasip2";
/// The workspace profile guests build with (Cargo.toml says why it is not
/// plain `release`); also the name of its output directory.
const GUEST_PROFILE: &str = "plugin";

/// Variables of the outer build that must not reach the nested guest build.
const HOST_ONLY_ENV: &[&str] = &[
    // Flags meant for the host (coverage, target-cpu, sanitizers). Cargo sets
    // CARGO_ENCODED_RUSTFLAGS for every build script, and it wins over
    // RUSTFLAGS; guests take theirs from CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS.
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    // clippy-driver under `cargo clippy`: it would lint the guests and change
    // their fingerprints, so `cargo test` after `cargo clippy` rebuilt them all.
    "RUSTC_WORKSPACE_WRAPPER",
    // Replaced by the explicit --target and --target-dir below.
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    // The host's linker, which cargo hands to this script.
    "RUSTC_LINKER",
    // Only the variant build sets it (see VARIANTS).
    "TEST_PLUGIN_VERSION",
];

/// Prefixes of what cargo sets for this build script alone: the host's cfg
/// (`CARGO_CFG_UNIX`...) would leak into the guests' own build scripts.
const HOST_ONLY_ENV_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "DEP_"];

/// Extra builds of a test plugin with one environment variable set, laid out
/// as `<name>.wasm.bin` next to the test plugins (not loadable as a plugin of
/// its own: tests copy it over the original).
struct Variant {
    plugin: &'static str,
    name: &'static str,
    env: (&'static str, &'static str),
}

const VARIANTS: &[Variant] = &[Variant {
    plugin: "versioned",
    name: "versioned-v2",
    env: ("TEST_PLUGIN_VERSION", "v2"),
}];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// plugins/<name>, package plugin-<name>.
    Example,
    /// tests/plugins/<name>, package test-plugin-<name>.
    Test,
    /// examples/plugin-template, laid out as `template` next to the examples.
    Template,
}

struct Guest {
    kind: Kind,
    /// The file stem of the laid-out files (and the manifest's name).
    name: String,
    package: String,
    dir: PathBuf,
}

impl Guest {
    /// What rustc names the component: the package name with underscores.
    fn artifact(&self) -> String {
        format!("{}.wasm", self.package.replace('-', "_"))
    }

    fn ident(&self) -> String {
        self.name.replace('-', "_")
    }
}

/// Why the build script stopped. Its message goes to cargo as `cargo::error`
/// lines, which cargo prints plainly; only when the nested build failed does
/// the script also exit non-zero, because cargo then shows its stderr: the
/// compiler's messages.
struct Failure {
    message: String,
    nested_build: bool,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self {
            message,
            nested_build: false,
        }
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            for line in failure
                .message
                .lines()
                .filter(|line| !line.trim().is_empty())
            {
                println!("cargo::error={line}");
            }
            if failure.nested_build {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn run() -> Result<(), Failure> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("no CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .join("../..")
        .canonicalize()
        .map_err(|err| format!("workspace root: {err}"))?;

    // Everything a guest build reads: its sources and manifests (new plugin
    // directories included), the SDK, the WIT contract, and the workspace's
    // dependency versions and profiles. Nothing else reruns this script.
    for path in [
        "plugins",
        "tests/plugins",
        "examples/plugin-template",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS");

    let guests = discover(&root)?;
    check_wasm_target()?;

    let target_dir = guest_target_dir()?;
    let wasm_out = target_dir.join(WASM_TARGET).join(GUEST_PROFILE);
    let example_dir = target_dir.join("plugins");
    let test_dir = target_dir.join("test-plugins");
    for dir in [&example_dir, &test_dir] {
        fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    }
    let layout_dir = |kind| {
        if kind == Kind::Test {
            &test_dir
        } else {
            &example_dir
        }
    };

    let packages: Vec<&str> = guests.iter().map(|g| g.package.as_str()).collect();
    cargo_build(&root, &target_dir, &packages, None)?;
    let mut laid_out = Vec::new();
    for guest in &guests {
        let dir = layout_dir(guest.kind);
        let wasm = dir.join(format!("{}.wasm", guest.name));
        let manifest = dir.join(format!("{}.toml", guest.name));
        install(&wasm_out.join(guest.artifact()), &wasm)?;
        install(&guest.dir.join("manifest.toml"), &manifest)?;
        laid_out.push((wasm, manifest));
    }

    // After the layout above: a variant overwrites the plugin's artifact. The
    // next run rebuilds that one small crate back, the price of keeping both
    // builds in one target directory with shared dependencies.
    let mut variants = Vec::new();
    for variant in VARIANTS {
        let guest = guests
            .iter()
            .find(|g| g.kind == Kind::Test && g.name == variant.plugin)
            .ok_or_else(|| {
                format!(
                    "tests/plugins/{} is gone but build.rs still builds its variant {}",
                    variant.plugin, variant.name
                )
            })?;
        cargo_build(&root, &target_dir, &[&guest.package], Some(variant.env))?;
        let wasm = test_dir.join(format!("{}.wasm.bin", variant.name));
        install(&wasm_out.join(guest.artifact()), &wasm)?;
        variants.push((variant, wasm));
    }

    let expected: Vec<&Path> = laid_out
        .iter()
        .flat_map(|(wasm, manifest)| [wasm.as_path(), manifest.as_path()])
        .chain(variants.iter().map(|(_, wasm)| wasm.as_path()))
        .collect();
    for dir in [&example_dir, &test_dir] {
        remove_stale(dir, &expected)?;
    }

    let code = generate(&guests, &laid_out, &variants, &example_dir, &test_dir)?;
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("no OUT_DIR")?);
    fs::write(out_dir.join("artifacts.rs"), code).map_err(|err| format!("artifacts.rs: {err}"))?;
    Ok(())
}

/// The guest crates: every cdylib under plugins/ and tests/plugins/, and the
/// plugin template, in a stable order.
fn discover(root: &Path) -> Result<Vec<Guest>, String> {
    let mut guests = Vec::new();
    for (kind, parent, prefix) in [
        (Kind::Example, "plugins", "plugin-"),
        (Kind::Test, "tests/plugins", "test-plugin-"),
    ] {
        let parent = root.join(parent);
        let entries =
            fs::read_dir(&parent).map_err(|err| format!("{}: {err}", parent.display()))?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.join("Cargo.toml").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let cargo_toml = read_to_string(&dir.join("Cargo.toml"))?;
            if !is_cdylib(&cargo_toml) {
                if kind == Kind::Test {
                    return Err(format!(
                        "{}: a test plugin must be `crate-type = [\"cdylib\"]`",
                        dir.display()
                    ));
                }
                continue; // a library such as the SDK
            }
            let name = dir
                .file_name()
                .and_then(OsStr::to_str)
                .filter(|name| valid_name(name))
                .ok_or_else(|| {
                    format!(
                        "{}: plugin directory names are lowercase letters, digits and dashes",
                        dir.display()
                    )
                })?
                .to_owned();
            guests.push(guest(
                kind,
                &dir,
                name.clone(),
                format!("{prefix}{name}"),
                &cargo_toml,
            )?);
        }
    }
    let template = root.join("examples/plugin-template");
    let cargo_toml = read_to_string(&template.join("Cargo.toml"))?;
    guests.push(guest(
        Kind::Template,
        &template,
        "template".into(),
        "plugin-template".into(),
        &cargo_toml,
    )?);
    Ok(guests)
}

fn guest(
    kind: Kind,
    dir: &Path,
    name: String,
    package: String,
    cargo_toml: &str,
) -> Result<Guest, String> {
    if package_name(cargo_toml) != Some(package.as_str()) {
        return Err(format!(
            "{}: the package must be named `{package}` (the build finds the component by that name)",
            dir.join("Cargo.toml").display()
        ));
    }
    if !dir.join("manifest.toml").is_file() {
        return Err(format!(
            "{}: a plugin needs its manifest.toml",
            dir.display()
        ));
    }
    Ok(Guest {
        kind,
        name,
        package,
        dir: dir.to_owned(),
    })
}

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_cdylib(cargo_toml: &str) -> bool {
    cargo_toml
        .lines()
        .map(str::trim)
        .any(|line| line.starts_with("crate-type") && line.contains("\"cdylib\""))
}

/// The first `name = "..."` line: the package's, in every guest manifest here.
fn package_name(cargo_toml: &str) -> Option<&str> {
    cargo_toml.lines().find_map(|line| {
        let value = line
            .trim()
            .strip_prefix("name")?
            .trim_start()
            .strip_prefix('=')?;
        value.trim().strip_prefix('"')?.split('"').next()
    })
}

/// Fails with the fix when the toolchain has no standard library for the
/// guest target; installing it is the user's call (`RUSTUP_AUTO_INSTALL` and
/// friends stay as they are), never this script's.
fn check_wasm_target() -> Result<(), String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .map_err(|err| format!("running {}: {err}", rustc.to_string_lossy()))?;
    let libdir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && Path::new(&libdir).is_dir() {
        return Ok(());
    }
    Err(format!(
        "the {WASM_TARGET} target is not installed for this Rust toolchain{}.\n\
         The integration tests load plugins built for it: run `rustup target add {WASM_TARGET}`, then build again.",
        if libdir.is_empty() {
            format!(" ({})", String::from_utf8_lossy(&output.stderr).trim())
        } else {
            format!(" ({libdir} does not exist)")
        }
    ))
}

/// `$CARGO_TARGET_DIR/guests`, or `guests` in the target directory this
/// script's `OUT_DIR` (`<target-dir>/<profile>/build/<package>-<hash>/out`) is
/// in. The Makefile computes the same path for `make plugins`.
fn guest_target_dir() -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR").map(PathBuf::from)
        && dir.is_absolute()
    {
        return Ok(dir.join("guests"));
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("no OUT_DIR")?);
    out_dir
        .ancestors()
        .nth(4)
        .map(|dir| dir.join("guests"))
        .ok_or_else(|| format!("unexpected OUT_DIR {}", out_dir.display()))
}

/// `cargo build --profile plugin --target wasm32-wasip2 -p ...` in the guest target
/// directory, with the same cargo, rustc and jobserver as the outer build
/// (`CARGO_MAKEFLAGS` stays, so the nested build shares the outer -j budget).
fn cargo_build(
    root: &Path,
    target_dir: &Path,
    packages: &[&str],
    env_var: Option<(&str, &str)>,
) -> Result<(), Failure> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .args([
            "build",
            "--profile",
            GUEST_PROFILE,
            "--locked",
            "--target",
            WASM_TARGET,
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    for name in HOST_ONLY_ENV {
        command.env_remove(name);
    }
    let prefixed: Vec<OsString> = env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| {
            name.to_str()
                .is_some_and(|n| HOST_ONLY_ENV_PREFIXES.iter().any(|p| n.starts_with(p)))
        })
        .collect();
    for name in prefixed {
        command.env_remove(name);
    }
    // A build-dir shared with the outer build (build.build-dir in a config
    // file) would put the guests' proc macros under a lock the outer holds.
    command.env("CARGO_BUILD_BUILD_DIR", target_dir);
    if let Some((name, value)) = env_var {
        command.env(name, value);
    }
    // Cargo reads this script's stdout for directives; the nested build's
    // output belongs with its diagnostics on stderr.
    command.stdout(Stdio::from(std::io::stderr()));
    eprintln!("running: {command:?}");
    let status = command
        .status()
        .map_err(|err| format!("running {}: {err}", cargo.to_string_lossy()))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure {
            message: format!(
                "building the guest plugins for {WASM_TARGET} failed ({status}); the compiler's messages are below, under `--- stderr`"
            ),
            nested_build: true,
        })
    }
}

/// Copies `from` to `to` through a temporary file and a rename, so a test
/// never reads a half-written plugin, and leaves `to` alone when unchanged.
fn install(from: &Path, to: &Path) -> Result<(), String> {
    let bytes = fs::read(from).map_err(|err| format!("{}: {err}", from.display()))?;
    if fs::read(to).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, &bytes).map_err(|err| format!("{}: {err}", tmp.display()))?;
    fs::rename(&tmp, to).map_err(|err| format!("{}: {err}", to.display()))
}

/// Removes files of plugins that no longer exist, so `make plugins` copies
/// only live ones.
fn remove_stale(dir: &Path, expected: &[&Path]) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    for path in entries.filter_map(|entry| entry.ok().map(|e| e.path())) {
        if !expected.contains(&path.as_path()) {
            fs::remove_file(&path).map_err(|err| format!("{}: {err}", path.display()))?;
        }
    }
    Ok(())
}

fn read_to_string(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))
}

fn literal(path: &Path) -> Result<String, String> {
    path.to_str()
        .map(|path| format!("{path:?}"))
        .ok_or_else(|| {
            format!(
                "{}: the guest target directory must be valid UTF-8",
                path.display()
            )
        })
}

fn generate(
    guests: &[Guest],
    laid_out: &[(PathBuf, PathBuf)],
    variants: &[(&Variant, PathBuf)],
    example_dir: &Path,
    test_dir: &Path,
) -> Result<String, String> {
    let mut code = String::from("// Generated by tests/artifacts/build.rs.\n\n");
    let _ = writeln!(
        code,
        "/// Every example plugin and the template, laid out as `<name>.wasm` + `<name>.toml`.\n\
         pub const EXAMPLE_PLUGIN_DIR: &str = {};\n",
        literal(example_dir)?
    );
    let _ = writeln!(
        code,
        "/// Every test plugin, laid out as `<name>.wasm` + `<name>.toml`, and the variants as `<name>.wasm.bin`.\n\
         pub const TEST_PLUGIN_DIR: &str = {};\n",
        literal(test_dir)?
    );
    let plugin = |guest: &Guest, (wasm, manifest): &(PathBuf, PathBuf)| -> Result<String, String> {
        Ok(format!(
            "crate::Plugin {{ name: {:?}, wasm: {}, manifest: {} }}",
            guest.name,
            literal(wasm)?,
            literal(manifest)?
        ))
    };
    for (kind, module, what) in [
        (
            Kind::Example,
            "example_plugins",
            "Example plugins (plugins/<name>).",
        ),
        (
            Kind::Test,
            "test_plugins",
            "Test-only plugins (tests/plugins/<name>).",
        ),
    ] {
        let _ = writeln!(code, "/// {what}\npub mod {module} {{");
        for (guest, files) in guests.iter().zip(laid_out).filter(|(g, _)| g.kind == kind) {
            let _ = writeln!(
                code,
                "    /// {}/{}\n    pub const {}: crate::Plugin = {};",
                if kind == Kind::Test {
                    "tests/plugins"
                } else {
                    "plugins"
                },
                guest.name,
                guest.ident().to_uppercase(),
                plugin(guest, files)?
            );
        }
        let _ = writeln!(code, "}}\n");
    }
    for (guest, files) in guests
        .iter()
        .zip(laid_out)
        .filter(|(g, _)| g.kind == Kind::Template)
    {
        let _ = writeln!(
            code,
            "/// examples/plugin-template, laid out as `template` with the example plugins.\n\
             pub const PLUGIN_TEMPLATE: crate::Plugin = {};\n",
            plugin(guest, files)?
        );
    }
    for (variant, wasm) in variants {
        let (name, value) = variant.env;
        let _ = writeln!(
            code,
            "/// tests/plugins/{} built again with `{name}={value}`.\n\
             pub const {}_WASM: &str = {};\n",
            variant.plugin,
            variant.name.replace('-', "_").to_uppercase(),
            literal(wasm)?
        );
    }
    for (kind, macro_name, module) in [
        (Kind::Example, "foreach_example_plugin", "example_plugins"),
        (Kind::Test, "foreach_test_plugin", "test_plugins"),
    ] {
        let _ = writeln!(
            code,
            "/// Calls `$mac!(ident, plugin)` for each plugin of `{module}`.\n\
             #[macro_export]\nmacro_rules! {macro_name} {{\n    ($mac:ident) => {{"
        );
        for guest in guests.iter().filter(|g| g.kind == kind) {
            let _ = writeln!(
                code,
                "        $mac!({}, $crate::{module}::{});",
                guest.ident(),
                guest.ident().to_uppercase()
            );
        }
        let _ = writeln!(code, "    }};\n}}\n");
    }
    Ok(code)
}
