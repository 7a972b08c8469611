//! The names MCP tools are exposed under: `PREFIX__tool`, in the model-safe set `[A-Za-z0-9_-]`, at most 64 characters (a short hash keeps shortened names apart).

/// The longest name the model providers accept for a tool.
pub const MAX_NAME_CHARS: usize = 64;

/// Hex digits of the hash that ends a shortened name.
const HASH_CHARS: usize = 8;

/// The name a server's tool `tool` is exposed under. Characters outside
/// `[A-Za-z0-9_-]` become `_`; a name over [`MAX_NAME_CHARS`] keeps its
/// start and ends in a hash of the whole unshortened name, so two long
/// names that share a start still differ.
pub fn exposed_name(prefix: &str, tool: &str) -> String {
    let joined = if prefix.is_empty() {
        tool.to_owned()
    } else {
        format!("{prefix}__{tool}")
    };
    let mut safe: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        safe.push('_');
    }
    // A sanitized name that differs from the original gets the hash too:
    // `a.b` and `a_b` must not meet as `a_b`.
    if safe.len() <= MAX_NAME_CHARS && safe == joined {
        return safe;
    }
    let hash = blake3::hash(joined.as_bytes()).to_hex();
    let keep = MAX_NAME_CHARS - HASH_CHARS - 1;
    if safe.len() > keep {
        safe.truncate(keep);
    }
    format!("{safe}_{}", &hash[..HASH_CHARS])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_safe(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= MAX_NAME_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn plain_names_are_prefixed_and_kept() {
        assert_eq!(
            exposed_name("github", "create_issue"),
            "github__create_issue"
        );
        assert_eq!(exposed_name("", "echo"), "echo");
        assert_eq!(exposed_name("e-v", "get-sum"), "e-v__get-sum");
    }

    #[test]
    fn unsafe_and_long_names_become_safe_and_stay_apart() {
        let dotted = exposed_name("fs", "read.file");
        let underscored = exposed_name("fs", "read_file");
        assert!(model_safe(&dotted), "{dotted}");
        assert_ne!(dotted, underscored);
        assert!(dotted.starts_with("fs__read_file_"));
        let long_a = exposed_name("server", &format!("{}a", "x".repeat(100)));
        let long_b = exposed_name("server", &format!("{}b", "x".repeat(100)));
        assert!(model_safe(&long_a) && model_safe(&long_b));
        assert_eq!(long_a.len(), MAX_NAME_CHARS);
        assert_ne!(long_a, long_b);
        for hostile in ["", "\u{202e}evil", "a\nb", "工具", "../../etc"] {
            let name = exposed_name("s", hostile);
            assert!(model_safe(&name), "{hostile:?} -> {name}");
        }
        assert!(model_safe(&exposed_name("", "")));
    }
}
