//! Deny-by-default capability granting: what a plugin gets is what its manifest requests AND the host grants.
//!
//! This is the only place that decides access. The sandbox module turns the
//! result into WASI preopens, environment, socket and HTTP checks, and store
//! limits; it adds nothing of its own.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Grant, SandboxConfig};
use crate::manifest::{Access, Manifest};

/// A host directory mounted into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountedDir {
    /// Canonical host path (symlinks resolved when the grant is made).
    pub host: PathBuf,
    pub guest: String,
    pub access: Access,
}

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
    pub fn parse(text: &str) -> Result<Self, String> {
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
            "" => return Err(format!("'{text}' has no host")),
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

fn split_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let parse_port = |port: &str| {
        port.parse::<u16>()
            .map_err(|_| format!("'{text}' has an invalid port '{port}'"))
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{text}' has an unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(parse_port(port)?),
            None if after.is_empty() => None,
            None => return Err(format!("'{text}' is not host:port")),
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
    pub allowed: Vec<HostPattern>,
}

impl NetworkPolicy {
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
    pub memory_bytes: u64,
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// `None` when fuel metering is off.
    pub fuel: Option<u64>,
    pub max_output_bytes: usize,
    pub log_capture_bytes: usize,
}

mod millis {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

/// The capabilities a plugin actually gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub dirs: Vec<MountedDir>,
    /// Variables and their values, read from the host environment when the
    /// plugin is loaded.
    pub env: Vec<(String, String)>,
    pub network: NetworkPolicy,
    pub limits: Limits,
    /// What the manifest asked for and did not get, for `plugins check`.
    pub not_granted: Vec<String>,
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
) -> Result<Capabilities, String> {
    let mut not_granted = Vec::new();

    let mut dirs = Vec::new();
    for request in &manifest.capabilities.dirs {
        let Some(granted) = grant.dirs.iter().find(|g| g.guest == request.path) else {
            not_granted.push(format!("dir {} ({})", request.path, request.access));
            continue;
        };
        let host = granted.host.canonicalize().map_err(|err| {
            format!(
                "host directory {} granted as {} cannot be opened: {err}",
                granted.host.display(),
                granted.guest
            )
        })?;
        if !host.is_dir() {
            return Err(format!(
                "host path {} granted as {} is not a directory",
                host.display(),
                granted.guest
            ));
        }
        let access = request.access.min(granted.access);
        if access < request.access {
            not_granted.push(format!("write access to {}", request.path));
        }
        dirs.push(MountedDir {
            host,
            guest: request.path.clone(),
            access,
        });
    }

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
    Ok(Capabilities {
        dirs,
        env,
        network: NetworkPolicy { allowed },
        limits: Limits {
            memory_bytes: memory_mb * 1024 * 1024,
            timeout: Duration::from_millis(timeout_ms),
            fuel,
            max_output_bytes: (output_kb * 1024) as usize,
            log_capture_bytes: (sandbox.log_capture_kb * 1024) as usize,
        },
        not_granted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DirGrant;

    fn manifest(extra: &str) -> Manifest {
        Manifest::parse(&format!(
            "[plugin]\nname = \"p\"\nversion = \"0.1.0\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn nothing_requested_means_nothing_granted() {
        let grant = Grant {
            env: vec!["HOME".into()],
            network: vec!["*".into()],
            ..Default::default()
        };
        let caps = super::grant(&manifest(""), &grant, &SandboxConfig::default()).unwrap();
        assert!(caps.dirs.is_empty());
        assert!(caps.env.is_empty());
        assert!(caps.network.is_empty());
        assert!(!caps.network.allows_host("example.com", 443));
    }

    #[test]
    fn requested_but_not_granted_is_denied_and_reported() {
        let m = manifest(
            "[capabilities]\ndirs = [{ path = \"/data\", access = \"read\" }]\nenv = [\"SECRET\"]\nnetwork = [\"example.com\"]",
        );
        let caps = super::grant(&m, &Grant::default(), &SandboxConfig::default()).unwrap();
        assert!(caps.dirs.is_empty() && caps.env.is_empty() && caps.network.is_empty());
        assert_eq!(caps.not_granted.len(), 3, "{:?}", caps.not_granted);
    }

    #[test]
    fn dir_access_is_the_lesser_of_request_and_grant_and_symlinks_resolve() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let m = manifest("[capabilities]\ndirs = [{ path = \"/w\", access = \"read-write\" }]");
        let grant = Grant {
            dirs: vec![DirGrant {
                host: link,
                guest: "/w".into(),
                access: Access::Read,
            }],
            ..Default::default()
        };
        let caps = super::grant(&m, &grant, &SandboxConfig::default()).unwrap();
        assert_eq!(caps.dirs[0].access, Access::Read);
        assert_eq!(caps.dirs[0].host, real.canonicalize().unwrap());
        assert!(caps.not_granted.iter().any(|n| n.contains("write access")));
    }

    #[test]
    fn a_granted_directory_that_does_not_exist_is_an_error() {
        let m = manifest("[capabilities]\ndirs = [{ path = \"/w\", access = \"read\" }]");
        let grant = Grant {
            dirs: vec![DirGrant {
                host: "/definitely/not/here".into(),
                guest: "/w".into(),
                access: Access::Read,
            }],
            ..Default::default()
        };
        let err = super::grant(&m, &grant, &SandboxConfig::default()).unwrap_err();
        assert!(err.contains("/definitely/not/here"), "{err}");
    }

    #[test]
    fn network_is_the_intersection_of_patterns() {
        let m = manifest("[capabilities]\nnetwork = [\"*\"]");
        let grant = Grant {
            network: vec!["127.0.0.1:8080".into(), "api.example.com".into()],
            ..Default::default()
        };
        let caps = super::grant(&m, &grant, &SandboxConfig::default()).unwrap();
        let net = &caps.network;
        assert!(net.allows_host("127.0.0.1", 8080));
        assert!(!net.allows_host("127.0.0.1", 8081));
        assert!(net.allows_host("API.example.com", 443));
        assert!(!net.allows_host("evil.example.com", 443));
        assert!(net.allows_addr("127.0.0.1".parse().unwrap(), 8080));
        assert!(!net.allows_addr("127.0.0.2".parse().unwrap(), 8080));
        // A name grant never opens raw sockets.
        assert!(!net.allows_addr("93.184.216.34".parse().unwrap(), 443));

        let m = manifest("[capabilities]\nnetwork = [\"api.example.com:443\", \"other.org\"]");
        let grant = Grant {
            network: vec!["api.example.com".into()],
            ..Default::default()
        };
        let caps = super::grant(&m, &grant, &SandboxConfig::default()).unwrap();
        assert!(caps.network.allows_host("api.example.com", 443));
        assert!(!caps.network.allows_host("api.example.com", 80));
        assert!(!caps.network.allows_host("other.org", 443));
        assert_eq!(caps.not_granted, vec!["network other.org".to_string()]);
    }

    #[test]
    fn host_patterns_parse_and_reject_nonsense() {
        assert_eq!(HostPattern::parse("*").unwrap().to_string(), "*");
        assert_eq!(HostPattern::parse("a.b:81").unwrap().port, Some(81));
        assert_eq!(
            HostPattern::parse("[::1]:80").unwrap().host.as_deref(),
            Some("::1")
        );
        assert_eq!(HostPattern::parse("::1").unwrap().port, None);
        assert!(HostPattern::parse("a.b:http").is_err());
        assert!(HostPattern::parse(":80").is_err());
    }

    #[test]
    fn limits_are_capped_by_the_host() {
        let m = manifest("[limits]\nmemory_mb = 100000\ntimeout_ms = 5\nfuel = 10");
        let caps = super::grant(&m, &Grant::default(), &SandboxConfig::default()).unwrap();
        assert_eq!(caps.limits.memory_bytes, 1024 * 1024 * 1024);
        assert_eq!(caps.limits.timeout, Duration::from_millis(5));
        assert_eq!(caps.limits.fuel, None);
        assert!(caps.not_granted.iter().any(|n| n.contains("fuel")));
    }

    #[test]
    fn fuel_is_capped_by_the_host_maximum() {
        let sandbox = SandboxConfig {
            fuel: true,
            max_fuel: 1_000,
            ..SandboxConfig::default()
        };
        let m = manifest("[limits]\nfuel = 9000000000000000000");
        let caps = super::grant(&m, &Grant::default(), &sandbox).unwrap();
        assert_eq!(caps.limits.fuel, Some(1_000));
        let caps = super::grant(&manifest(""), &Grant::default(), &sandbox).unwrap();
        assert_eq!(caps.limits.fuel, Some(1_000));
        let m = manifest("[limits]\nfuel = 10");
        let caps = super::grant(&m, &Grant::default(), &sandbox).unwrap();
        assert_eq!(caps.limits.fuel, Some(10));
    }
}
