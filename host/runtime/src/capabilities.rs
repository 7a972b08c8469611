//! Deny-by-default capability granting: what a plugin gets is what its manifest requests AND the host grants.
//!
//! This is the only place that decides access. The sandbox module turns the
//! result into WASI preopens, environment, socket and HTTP checks, and store
//! limits; it adds nothing of its own.
//!
//! Granted directories are opened here, once, when the plugin is loaded:
//! component by component and without following symbolic links (unless the
//! host config opts in for that grant), and every call's preopen shares that
//! one open directory. A plugin that later swaps the host path for a link
//! (issue 11) cannot redirect a grant: not in a running host, which never
//! looks at the path again, and not at the next start, which refuses the link.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use serde::Serialize;
use wasmtime_wasi::filesystem::Dir;
use wasmtime_wasi::{FsPerms, OpenMode};

use crate::config::{DirGrant, Grant, RuntimeConfig, SandboxConfig};
use crate::error::{GrantError, HostPatternError};
use crate::manifest::{Access, Manifest};

/// A host directory mounted into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountedDir {
    /// Where the opened directory really is (read back from the open
    /// descriptor), for display and overlap checks. Never opened again.
    pub host: PathBuf,
    /// The guest path it appears at.
    pub guest: String,
    /// The access granted.
    pub access: Access,
    /// The directory, opened once when the grant was made.
    #[serde(skip)]
    pub handle: DirHandle,
}

/// A granted directory held open for the plugin's lifetime. Every call's
/// preopen is a clone of it (an `Arc` of the same descriptor), so calls cost
/// no `open` and a later change of the path cannot redirect them.
#[derive(Clone)]
pub struct DirHandle(Dir);

impl DirHandle {
    fn new(fd: OwnedFd, access: Access) -> Self {
        let (perms, mode) = match access {
            Access::Read => (FsPerms::ReadOnly, OpenMode::READ),
            Access::ReadWrite => (FsPerms::ReadWrite, OpenMode::READ | OpenMode::WRITE),
        };
        // `false`: filesystem work runs on tokio's blocking pool, the
        // default of `WasiCtxBuilder::preopened_dir` as well.
        Self(Dir::new(std::fs::File::from(fd), perms, mode, false))
    }

    /// The preopen for one call.
    pub fn preopen(&self) -> Dir {
        self.0.clone()
    }

    /// The open directory.
    pub fn file(&self) -> &std::fs::File {
        &self.0.dir
    }
}

impl std::fmt::Debug for DirHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DirHandle(fd {})", self.0.dir.as_raw_fd())
    }
}

impl PartialEq for DirHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0.dir, &other.0.dir)
    }
}

impl Eq for DirHandle {}

/// A network destination a plugin may reach: a host name or IP (or any), and
/// a port (or any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostPattern {
    /// `None` means any host.
    pub host: Option<String>,
    /// `None` means any port.
    pub port: Option<u16>,
}

impl HostPattern {
    /// Parses `*`, `host`, `host:port`, `*:port` or `[v6]:port`.
    pub fn parse(text: &str) -> Result<Self, HostPatternError> {
        let text = text.trim();
        if text == "*" {
            return Ok(HostPattern {
                host: None,
                port: None,
            });
        }
        let (host, port) = split_host_port(text)?;
        let host = match host.as_str() {
            "*" => None,
            "" => return Err(bad_pattern(text, "has no host".to_owned())),
            _ => Some(host.to_ascii_lowercase()),
        };
        Ok(HostPattern { host, port })
    }

    /// The destinations allowed by both patterns, if any.
    fn intersect(&self, other: &HostPattern) -> Option<HostPattern> {
        let host = match (&self.host, &other.host) {
            (None, host) | (host, None) => host.clone(),
            (Some(a), Some(b)) if a == b => Some(a.clone()),
            _ => return None,
        };
        let port = match (self.port, other.port) {
            (None, port) | (port, None) => port,
            (Some(a), Some(b)) if a == b => Some(a),
            _ => return None,
        };
        Some(HostPattern { host, port })
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        let host_ok = match &self.host {
            None => true,
            Some(allowed) => allowed.eq_ignore_ascii_case(host.trim_matches(['[', ']'])),
        };
        host_ok && self.port.is_none_or(|allowed| allowed == port)
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self.host.as_deref().unwrap_or("*");
        match self.port {
            Some(port) if host.contains(':') => write!(f, "[{host}]:{port}"),
            Some(port) => write!(f, "{host}:{port}"),
            None => f.write_str(host),
        }
    }
}

fn bad_pattern(text: &str, problem: String) -> HostPatternError {
    HostPatternError {
        pattern: text.to_owned(),
        problem,
    }
}

fn split_host_port(text: &str) -> Result<(String, Option<u16>), HostPatternError> {
    let parse_port = |port: &str| {
        port.parse::<u16>()
            .map_err(|_| bad_pattern(text, format!("has an invalid port '{port}'")))
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad_pattern(text, "has an unclosed '['".to_owned()))?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(parse_port(port)?),
            None if after.is_empty() => None,
            None => return Err(bad_pattern(text, "is not host:port".to_owned())),
        };
        return Ok((host.to_owned(), port));
    }
    match text.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, _)) if host.contains(':') => Ok((text.to_owned(), None)),
        Some((host, port)) => Ok((host.to_owned(), Some(parse_port(port)?))),
        None => Ok((text.to_owned(), None)),
    }
}

/// Who may be reached over the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkPolicy {
    /// The destinations granted (manifest request intersected with the grant).
    pub allowed: Vec<HostPattern>,
}

impl NetworkPolicy {
    /// Whether nothing may be reached.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }

    /// Whether an HTTP request to `host:port` may be sent.
    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        self.allowed
            .iter()
            .any(|pattern| pattern.allows(host, port))
    }

    /// Whether a raw socket may connect to `ip:port`. Only IP grants (or `*`)
    /// open sockets: a host-name grant would need a DNS lookup per check,
    /// and names are for HTTP.
    pub fn allows_addr(&self, ip: IpAddr, port: u16) -> bool {
        self.allowed.iter().any(|pattern| match &pattern.host {
            None => pattern.port.is_none_or(|allowed| allowed == port),
            Some(host) => host
                .parse::<IpAddr>()
                .is_ok_and(|allowed| allowed == ip && pattern.port.is_none_or(|p| p == port)),
        })
    }
}

/// Limits a call runs under, after capping the manifest by the host maximums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Memory cap in bytes.
    pub memory_bytes: u64,
    /// The most memory this host lets any plugin have (`sandbox.max_memory_mb`),
    /// in MiB: says where a refused memory request can be raised.
    #[serde(skip)]
    pub host_max_memory_mb: u64,
    /// Wall-clock deadline of one call.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// `None` when fuel metering is off.
    pub fuel: Option<u64>,
    /// Output cap in bytes.
    pub max_output_bytes: usize,
    /// Bytes of guest stdout/stderr kept per call (for logs and failure details).
    pub log_capture_bytes: usize,
    /// Files and directories one call may hold open at once (after the
    /// process-wide cap, see [`crate::sandbox::open_file_cap`]).
    pub max_open_files: usize,
}

mod millis {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

/// The capabilities a plugin actually gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Directories mounted into the sandbox.
    pub dirs: Vec<MountedDir>,
    /// Variables and their values, read from the host environment when the
    /// plugin is loaded.
    pub env: Vec<(String, String)>,
    /// Who may be reached over the network.
    pub network: NetworkPolicy,
    /// The limits each call runs under.
    pub limits: Limits,
    /// Whether the guest may create symbolic links (`sandbox.allow_guest_symlinks`).
    pub guest_symlinks: bool,
    /// What the manifest asked for and did not get, for `plugins check`.
    pub not_granted: Vec<String>,
    /// Granted, but worth the host owner's attention (overlapping grants of
    /// other plugins, a capped limit); logged at load and shown by
    /// `plugins check`.
    pub warnings: Vec<String>,
}

/// [`grant`] for plugin `plugin` of a host config, plus warnings about its
/// directories overlapping another plugin's writable grant (that plugin
/// could change what this one sees). Logs every warning.
pub fn grant_in(
    manifest: &Manifest,
    plugin: &str,
    config: &RuntimeConfig,
) -> Result<Capabilities, GrantError> {
    let mut caps = grant(manifest, &config.grant_for(plugin), &config.sandbox)?;
    caps.warnings.extend(overlaps_with_other_plugins(
        plugin,
        &caps.dirs,
        &config.grants,
    ));
    for warning in &caps.warnings {
        tracing::warn!(plugin, "{warning}");
    }
    Ok(caps)
}

/// Intersects a manifest's requests with the host's grant and limits.
///
/// Returns an error only when the grant itself is unusable (a granted host
/// directory that does not exist); anything merely not granted is listed in
/// `not_granted` and denied.
pub fn grant(
    manifest: &Manifest,
    grant: &Grant,
    sandbox: &SandboxConfig,
) -> Result<Capabilities, GrantError> {
    let mut not_granted = Vec::new();

    let mut dirs = Vec::new();
    for request in &manifest.capabilities.dirs {
        let Some(granted) = grant.dirs.iter().find(|g| g.guest == request.path) else {
            not_granted.push(format!("dir {} ({})", request.path, request.access));
            continue;
        };
        let access = request.access.min(granted.access);
        if access < request.access {
            not_granted.push(format!("write access to {}", request.path));
        }
        let fd = open_granted_dir(granted, &manifest.plugin.name)?;
        dirs.push(MountedDir {
            host: real_path(&fd, &granted.host),
            guest: request.path.clone(),
            access,
            handle: DirHandle::new(fd, access),
        });
    }
    refuse_overlaps(&dirs)?;

    let mut env = Vec::new();
    for name in &manifest.capabilities.env {
        if !grant.env.iter().any(|granted| granted == name) {
            not_granted.push(format!("env {name}"));
            continue;
        }
        if let Ok(value) = std::env::var(name) {
            env.push((name.clone(), value));
        }
    }

    let granted_hosts = grant
        .network
        .iter()
        .map(|text| HostPattern::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    let mut allowed = Vec::new();
    for request in &manifest.capabilities.network {
        let request = HostPattern::parse(request)?;
        let mut matched = false;
        for granted in &granted_hosts {
            if let Some(both) = request.intersect(granted) {
                matched = true;
                if !allowed.contains(&both) {
                    allowed.push(both);
                }
            }
        }
        if !matched {
            not_granted.push(format!("network {request}"));
        }
    }

    let limits_request = &manifest.limits;
    let fuel = match (sandbox.fuel, limits_request.fuel) {
        (true, fuel) => Some(fuel.unwrap_or(sandbox.max_fuel).min(sandbox.max_fuel)),
        (false, Some(fuel)) => {
            not_granted.push(format!(
                "fuel limit {fuel} (fuel metering is off in this host; the timeout applies)"
            ));
            None
        }
        (false, None) => None,
    };
    let memory_mb = limits_request
        .memory_mb
        .unwrap_or(sandbox.default_memory_mb)
        .min(sandbox.max_memory_mb);
    let timeout_ms = limits_request
        .timeout_ms
        .unwrap_or(sandbox.default_timeout_ms)
        .min(sandbox.max_timeout_ms);
    let output_kb = limits_request
        .max_output_kb
        .unwrap_or(sandbox.default_max_output_kb)
        .min(sandbox.max_output_kb);
    let open_files = crate::sandbox::open_file_cap(sandbox);
    let mut warnings = Vec::new();
    if let Some(note) = &open_files.capped {
        warnings.push(note.clone());
    }
    Ok(Capabilities {
        dirs,
        env,
        network: NetworkPolicy { allowed },
        limits: Limits {
            memory_bytes: memory_mb * 1024 * 1024,
            host_max_memory_mb: sandbox.max_memory_mb,
            timeout: Duration::from_millis(timeout_ms),
            fuel,
            max_output_bytes: (output_kb * 1024) as usize,
            log_capture_bytes: (sandbox.log_capture_kb * 1024) as usize,
            max_open_files: open_files.per_call,
        },
        guest_symlinks: sandbox.allow_guest_symlinks,
        not_granted,
        warnings,
    })
}

/// Opens a granted host directory. Without `follow_symlinks` the path is
/// walked one component at a time with `O_NOFOLLOW`, each step relative to
/// the directory opened before it, so no component can be a link and no
/// swap between a check and the open can slip one in.
fn open_granted_dir(granted: &DirGrant, plugin: &str) -> Result<OwnedFd, GrantError> {
    let cannot = |at: &Path, reason: String| GrantError::CannotOpen {
        host: granted.host.clone(),
        guest: granted.guest.clone(),
        at: at.to_owned(),
        reason,
    };
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if granted.follow_symlinks {
        return rustix::fs::openat(CWD, &granted.host, dir_flags, Mode::empty())
            .map_err(|err| cannot(&granted.host, std::io::Error::from(err).to_string()));
    }
    let flags = dir_flags | OFlags::NOFOLLOW;
    let start = if granted.host.is_absolute() { "/" } else { "." };
    let mut current = rustix::fs::openat(CWD, start, flags, Mode::empty())
        .map_err(|err| cannot(Path::new(start), std::io::Error::from(err).to_string()))?;
    let mut walked = PathBuf::from(if granted.host.is_absolute() { "/" } else { "" });
    for component in granted.host.components() {
        let name: &OsStr = match component {
            Component::Normal(name) => name,
            Component::ParentDir => OsStr::new(".."),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        };
        walked.push(name);
        match rustix::fs::openat(&current, name, flags, Mode::empty()) {
            Ok(next) => current = next,
            Err(err) => {
                let kind = rustix::fs::statat(&current, name, AtFlags::SYMLINK_NOFOLLOW)
                    .ok()
                    .map(|stat| FileType::from_raw_mode(stat.st_mode));
                return Err(match kind {
                    Some(FileType::Symlink) => {
                        let target = std::fs::read_link(&walked)
                            .map(|t| format!(" (-> {})", t.display()))
                            .unwrap_or_default();
                        GrantError::Symlink {
                            host: granted.host.clone(),
                            guest: granted.guest.clone(),
                            link: walked.clone(),
                            target,
                            plugin: plugin.to_owned(),
                        }
                    }
                    Some(FileType::Directory) | None => {
                        cannot(&walked, std::io::Error::from(err).to_string())
                    }
                    Some(_) => GrantError::NotDirectory {
                        host: granted.host.clone(),
                        guest: granted.guest.clone(),
                        at: walked.clone(),
                    },
                });
            }
        }
    }
    Ok(current)
}

/// Where an open directory is now: the kernel's name for it, or the
/// configured path where /proc is not available.
fn real_path(fd: &OwnedFd, configured: &Path) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
        .ok()
        .filter(|path| path.is_absolute())
        .unwrap_or_else(|| configured.to_owned())
}

/// Whether one directory is inside the other, or they are the same.
fn overlap(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Two grants of one plugin that overlap with one of them writable let the
/// plugin rearrange, through the writable one, what the other shows; the
/// attack of issue 11 started that way. Refused.
fn refuse_overlaps(dirs: &[MountedDir]) -> Result<(), GrantError> {
    for (i, a) in dirs.iter().enumerate() {
        for b in &dirs[i + 1..] {
            let writable = [a, b].into_iter().find(|d| d.access == Access::ReadWrite);
            let Some(writable) = writable else { continue };
            if !overlap(&a.host, &b.host) && !same_dir(a, b) {
                continue;
            }
            return Err(GrantError::Overlap {
                first: a.guest.clone(),
                first_host: a.host.clone(),
                second: b.guest.clone(),
                second_host: b.host.clone(),
                first_writable: std::ptr::eq(writable, a),
            });
        }
    }
    Ok(())
}

/// The same directory under two names (a bind mount, an opted-in link).
fn same_dir(a: &MountedDir, b: &MountedDir) -> bool {
    match (
        rustix::fs::fstat(a.handle.file()),
        rustix::fs::fstat(b.handle.file()),
    ) {
        (Ok(x), Ok(y)) => x.st_dev == y.st_dev && x.st_ino == y.st_ino,
        _ => false,
    }
}

/// Warnings for each of `dirs` that overlaps a writable grant of another
/// plugin: that plugin can change what this one sees (the cross-plugin form
/// of issue 11). Not refused: sharing a directory between a writer and a
/// reader can be intended, and the other plugin may not even be installed.
fn overlaps_with_other_plugins(
    plugin: &str,
    dirs: &[MountedDir],
    grants: &BTreeMap<String, Grant>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for (other, grant) in grants {
        if other == plugin {
            continue;
        }
        for theirs in grant.dirs.iter().filter(|d| d.access == Access::ReadWrite) {
            // Only to compare paths: the other plugin's grant is opened
            // (and checked for links) when that plugin loads.
            let Ok(real) = std::fs::canonicalize(&theirs.host) else {
                continue;
            };
            for mine in dirs.iter().filter(|mine| overlap(&mine.host, &real)) {
                warnings.push(format!(
                    "grant {} (host {}) overlaps the writable grant {} (host {}) of plugin '{other}': \
                     '{other}' can change what this plugin sees there; give each plugin its own \
                     directory, or make one of the grants read-only",
                    mine.guest,
                    mine.host.display(),
                    theirs.guest,
                    real.display()
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
#[path = "capabilities_tests.rs"]
mod tests;
