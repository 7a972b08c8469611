//! Path resolution: normalizes a requested path and finds the host grant (preopened directory) that covers it.

use agent_plugin_sdk::ToolError;

/// Where relative paths point: the directory this plugin's manifest asks for.
pub const DEFAULT_ROOT: &str = "/workspace";

/// A normalized absolute path and the preopened directory that contains it.
#[derive(Debug)]
pub struct Grant {
    pub path: String,
    pub root: String,
}

impl Grant {
    /// Resolves `requested` and checks it lies inside a directory the host
    /// preopened; `denied` otherwise.
    pub fn check(requested: &str) -> Result<Self, ToolError> {
        let path = normalize(requested, DEFAULT_ROOT);
        let roots = preopened_roots();
        match covering_root(&path, &roots) {
            Some(root) => Ok(Self {
                root: root.to_owned(),
                path,
            }),
            None if roots.is_empty() => Err(ToolError::denied(format!(
                "the host did not grant this plugin any directory, so `{path}` is not accessible"
            ))),
            None => Err(ToolError::denied(format!(
                "the host did not grant access to `{path}`; granted directories: {}",
                roots.join(", ")
            ))),
        }
    }
}

/// Guest paths of the directories the host preopened for this instance.
fn preopened_roots() -> Vec<String> {
    // Each call hands out fresh descriptors; dropping them closes only those
    // copies, not the ones std opened for its own use.
    wasip2::filesystem::preopens::get_directories()
        .into_iter()
        .map(|(_descriptor, name)| normalize(&name, "/"))
        .collect()
}

/// The longest root that is `path` itself or one of its ancestors.
pub fn covering_root<'a>(path: &str, roots: &'a [String]) -> Option<&'a str> {
    roots
        .iter()
        .filter(|root| {
            root.as_str() == "/"
                || path == root.as_str()
                || path
                    .strip_prefix(root.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|root| root.len())
        .map(String::as_str)
}

/// An absolute path without `.`, `..` or repeated slashes. Relative paths
/// are taken from `base`; `..` never climbs above `/`.
pub fn normalize(path: &str, base: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined;
    let full = if path.starts_with('/') {
        path
    } else {
        joined = format!("{base}/{path}");
        &joined
    };
    for part in full.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize("notes.txt", DEFAULT_ROOT), "/workspace/notes.txt");
        assert_eq!(normalize("./a//b/../c/", DEFAULT_ROOT), "/workspace/a/c");
        assert_eq!(normalize("../../etc/passwd", DEFAULT_ROOT), "/etc/passwd");
        assert_eq!(normalize("/", DEFAULT_ROOT), "/");
        assert_eq!(normalize(".", "/"), "/");
    }

    #[test]
    fn finds_the_covering_root() {
        let roots = vec![
            "/workspace".to_owned(),
            "/workspace/sub".to_owned(),
            "/data".to_owned(),
        ];
        assert_eq!(covering_root("/workspace", &roots), Some("/workspace"));
        assert_eq!(covering_root("/workspace/a", &roots), Some("/workspace"));
        assert_eq!(
            covering_root("/workspace/sub/x", &roots),
            Some("/workspace/sub")
        );
        assert_eq!(covering_root("/workspacefoo", &roots), None);
        assert_eq!(covering_root("/etc/passwd", &roots), None);
        assert_eq!(covering_root("/anything", &["/".to_owned()]), Some("/"));
    }
}
