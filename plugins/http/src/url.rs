//! URL splitting: just enough of RFC 3986 to fill wasi:http's scheme, authority and path-with-query.

use agent_plugin_sdk::ToolError;

#[derive(Debug, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// `host` or `host:port`, as the request's authority.
    pub authority: String,
    /// The host alone, for messages.
    pub host: String,
    /// Starts with `/`; the fragment is dropped (it is never sent).
    pub path_with_query: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Self, ToolError> {
        let bad = |why: &str| ToolError::invalid_arguments(format!("`url` {why}: {url}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("must start with http:// or https://"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("must use http or https")),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() {
            return Err(bad("has no host"));
        }
        if authority.contains('@') {
            return Err(bad(
                "must not contain credentials; send an Authorization header instead",
            ));
        }
        if authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad("has whitespace in its host"));
        }
        let host = if let Some(v6) = authority.strip_prefix('[') {
            v6.split(']').next().unwrap_or(v6).to_owned()
        } else {
            authority.split(':').next().unwrap_or(authority).to_owned()
        };
        let tail = tail.split('#').next().unwrap_or("");
        let path_with_query = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        if path_with_query
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad("has unencoded whitespace in its path (use %20)"));
        }
        Ok(Self {
            https,
            authority: authority.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
            path_with_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let url = Url::parse("HTTPS://Example.com:8443/a/b?q=1#frag").unwrap();
        assert_eq!(
            url,
            Url {
                https: true,
                authority: "example.com:8443".into(),
                host: "example.com".into(),
                path_with_query: "/a/b?q=1".into(),
            }
        );
        let url = Url::parse("http://[::1]:80?x").unwrap();
        assert_eq!(
            (url.host.as_str(), url.path_with_query.as_str()),
            ("::1", "/?x")
        );
        assert_eq!(Url::parse("http://h").unwrap().path_with_query, "/");
        assert!(Url::parse("ftp://h/").is_err());
        assert!(Url::parse("example.com").is_err());
        assert!(Url::parse("http:///path").is_err());
        assert!(Url::parse("http://user:pw@h/").is_err());
        assert!(Url::parse("http://h/a b").is_err());
    }
}
