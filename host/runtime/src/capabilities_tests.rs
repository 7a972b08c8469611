//! Unit tests of granting capabilities: directories, symlinks, overlaps, network patterns, limits.

use super::*;

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

fn dir_grant(host: impl Into<PathBuf>, guest: &str, access: Access) -> DirGrant {
    DirGrant {
        host: host.into(),
        guest: guest.into(),
        access,
        follow_symlinks: false,
    }
}

#[test]
fn dir_access_is_the_lesser_of_request_and_grant_and_symlinks_need_an_opt_in() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let m = manifest("[capabilities]\ndirs = [{ path = \"/w\", access = \"read-write\" }]");
    let mut grant = Grant {
        dirs: vec![dir_grant(&link, "/w", Access::Read)],
        ..Default::default()
    };
    let err = super::grant(&m, &grant, &SandboxConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("symbolic link {}", link.display()))
            && err.contains("follow_symlinks = true")
            && err.contains("[[grants.p.dirs]]"),
        "{err}"
    );

    grant.dirs[0].follow_symlinks = true;
    let caps = super::grant(&m, &grant, &SandboxConfig::default()).unwrap();
    assert_eq!(caps.dirs[0].access, Access::Read);
    assert_eq!(caps.dirs[0].host, real.canonicalize().unwrap());
    assert!(caps.not_granted.iter().any(|n| n.contains("write access")));
}

#[test]
fn a_link_anywhere_in_the_path_is_refused_and_a_file_is_not_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("real/inner")).unwrap();
    std::os::unix::fs::symlink("real", tmp.path().join("link")).unwrap();
    std::fs::write(tmp.path().join("file"), "x").unwrap();
    let m = manifest("[capabilities]\ndirs = [{ path = \"/w\", access = \"read\" }]");
    let grant = |host: PathBuf| Grant {
        dirs: vec![dir_grant(host, "/w", Access::Read)],
        ..Default::default()
    };
    let sandbox = SandboxConfig::default();
    let err = super::grant(&m, &grant(tmp.path().join("link/inner")), &sandbox)
        .unwrap_err()
        .to_string();
    assert!(err.contains("(-> real)"), "{err}");
    let err = super::grant(&m, &grant(tmp.path().join("file")), &sandbox)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not a directory"), "{err}");
    let caps = super::grant(&m, &grant(tmp.path().join("real/inner/..")), &sandbox).unwrap();
    assert_eq!(
        caps.dirs[0].host,
        tmp.path().join("real").canonicalize().unwrap()
    );
}

#[test]
fn overlapping_grants_of_one_plugin_are_refused_when_one_is_writable() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("docs")).unwrap();
    let m = manifest(
        "[capabilities]\ndirs = [{ path = \"/w\", access = \"read-write\" }, { path = \"/docs\", access = \"read\" }]",
    );
    let grant = |w: Access| Grant {
        dirs: vec![
            dir_grant(&ws, "/w", w),
            dir_grant(ws.join("docs"), "/docs", Access::Read),
        ],
        ..Default::default()
    };
    let sandbox = SandboxConfig::default();
    let err = super::grant(&m, &grant(Access::ReadWrite), &sandbox)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("overlap") && err.contains("/w is writable") && err.contains("read-only"),
        "{err}"
    );
    // Both read-only: nothing can be rearranged.
    let caps = super::grant(&m, &grant(Access::Read), &sandbox).unwrap();
    assert_eq!(caps.dirs.len(), 2);
}

#[test]
fn a_grant_inside_another_plugins_writable_grant_is_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("docs")).unwrap();
    let mut config = RuntimeConfig::new(vec![], tmp.path().join("data"));
    config.grants.insert(
        "writer".into(),
        Grant {
            dirs: vec![dir_grant(&ws, "/w", Access::ReadWrite)],
            ..Default::default()
        },
    );
    config.grants.insert(
        "p".into(),
        Grant {
            dirs: vec![dir_grant(ws.join("docs"), "/docs", Access::Read)],
            ..Default::default()
        },
    );
    let m = manifest("[capabilities]\ndirs = [{ path = \"/docs\", access = \"read\" }]");
    let caps = grant_in(&m, "p", &config).unwrap();
    assert_eq!(caps.warnings.len(), 1, "{:?}", caps.warnings);
    assert!(
        caps.warnings[0].contains("plugin 'writer'"),
        "{:?}",
        caps.warnings
    );
}

#[test]
fn a_granted_directory_that_does_not_exist_is_an_error() {
    let m = manifest("[capabilities]\ndirs = [{ path = \"/w\", access = \"read\" }]");
    let grant = Grant {
        dirs: vec![dir_grant("/definitely/not/here", "/w", Access::Read)],
        ..Default::default()
    };
    let err = super::grant(&m, &grant, &SandboxConfig::default())
        .unwrap_err()
        .to_string();
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
