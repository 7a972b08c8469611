//! Unit tests of manifest parsing and validation.

use super::*;

const GOOD: &str = r#"
    [plugin]
    name = "fs"
    version = "0.1.0"
    [capabilities]
    dirs = [{ path = "/workspace", access = "read-write" }]
    env = ["HOME"]
    network = ["example.com:443"]
    [limits]
    memory_mb = 64
"#;

#[test]
fn parses_a_full_manifest() {
    let manifest = Manifest::parse(GOOD).unwrap();
    assert_eq!(manifest.plugin.name, "fs");
    assert_eq!(manifest.capabilities.dirs[0].access, Access::ReadWrite);
    assert_eq!(manifest.limits.memory_mb, Some(64));
    assert_eq!(manifest.limits.timeout_ms, None);
}

#[test]
fn minimal_manifest_requests_nothing() {
    let manifest = Manifest::parse("[plugin]\nname = \"x\"\nversion = \"1.2.3\"\n").unwrap();
    assert_eq!(manifest.capabilities, CapabilityRequest::default());
}

#[test]
fn rejects_bad_fields_with_their_names() {
    let cases = [
        (
            "[plugin]\nname = \"Bad Name\"\nversion = \"0.1.0\"",
            "plugin.name",
        ),
        (
            "[plugin]\nname = \"x\"\nversion = \"one\"",
            "plugin.version",
        ),
        (
            "[plugin]\nname = \"x\"\nversion = \"0.1.0\"\n[capabilities]\ndirs = [{ path = \"rel\", access = \"read\" }]",
            "absolute",
        ),
        (
            "[plugin]\nname = \"x\"\nversion = \"0.1.0\"\n[capabilities]\ndirs = [{ path = \"/a\", access = \"all\" }]",
            "access",
        ),
        (
            "[plugin]\nname = \"x\"\nversion = \"0.1.0\"\n[capabilities]\nnetwork = [\"https://a.com/\"]",
            "not a URL",
        ),
        (
            "[plugin]\nname = \"x\"\nversion = \"0.1.0\"\n[limits]\nmemory_mb = 0",
            "limits.memory_mb",
        ),
        (
            "[plugin]\nname = \"x\"\nversion = \"0.1.0\"\nsurprise = 1",
            "surprise",
        ),
        ("[plugin\nname", "TOML"),
    ];
    for (text, expected) in cases {
        let err = Manifest::parse(text).unwrap_err().to_string();
        let matches = err.contains(expected) || (expected == "TOML" && !err.is_empty());
        assert!(
            matches,
            "error for {text:?} should mention {expected:?}: {err}"
        );
    }
}

#[test]
fn versions_must_be_full_semver() {
    let good = [
        "0.0.0",
        "0.1.0",
        "1.2.3",
        "10.20.30",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-0.3.7",
        "1.0.0-x.7.z.92",
        "1.0.0-x-y-z.--",
        "1.0.0-alpha+001",
        "1.0.0+20130313144700",
        "1.0.0-beta+exp.sha.5114f85",
        "1.0.0+21AF26D3----117B344092BD",
        "18446744073709551615.0.0",
    ];
    for version in good {
        assert!(is_semver(version), "{version} is semver");
    }
    let bad = [
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "01.1.1",
        "1.01.1",
        "1.1.01",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-+",
        "1.2.3-0123",
        "1.2.3-01.1",
        "1.2.3-alpha..1",
        "1.2.3-alpha_beta",
        "1.2.3+build..1",
        "1.2.3+a+b",
        "v1.2.3",
        " 1.2.3",
        "1.2.3 ",
        "1.2.-3",
        "+1.2.3",
        "18446744073709551616.0.0",
        "0.1.0-\u{1b}]0;pwned\u{7}",
        "0.1.0+\u{1b}[2J",
        "0.1.0-\u{9b}2J",
        "0.1.0-é",
    ];
    for version in bad {
        assert!(!is_semver(version), "{version:?} is not semver");
    }
    let long = format!("1.0.0-{}", "a".repeat(MAX_VERSION_LEN));
    assert!(!is_semver(&long));
    let err = Manifest::parse("[plugin]\nname = \"x\"\nversion = \"0.1.0-\\u001b[2J\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("plugin.version") && err.contains("full semantic version"),
        "{err}"
    );
}
