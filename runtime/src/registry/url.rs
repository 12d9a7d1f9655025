//! Registry URLs (DISCOVERY.md, "Registry URLs"): `memory`, or
//! `zk://HOST:PORT[,HOST:PORT...][/BASE/PATH][?session_timeout_ms=N&digest=user:password]`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The ZooKeeper base path when the URL gives none.
pub const DEFAULT_BASE_PATH: &str = "/courier";

/// Where services are registered and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryUrl {
    /// `memory`: the in-process registry.
    Memory,
    /// `zk://...`: a ZooKeeper ensemble.
    ZooKeeper(ZooKeeperUrl),
}

/// The parts of a `zk://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooKeeperUrl {
    /// The ensemble, in the order given (at least one).
    pub hosts: Vec<ZooKeeperHost>,
    /// The base path (`/courier` by default): absolute, no trailing slash.
    pub base_path: String,
    /// `session_timeout_ms`, if given.
    pub session_timeout: Option<Duration>,
    /// `digest=user:password`, if given.
    pub digest: Option<DigestCredentials>,
}

impl ZooKeeperUrl {
    /// The ensemble as a ZooKeeper connect string: `host:port,host:port`.
    pub fn connect_string(&self) -> String {
        let hosts: Vec<String> = self.hosts.iter().map(ToString::to_string).collect();
        hosts.join(",")
    }
}

/// One server of a ZooKeeper ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooKeeperHost {
    /// A host name or IP address (an IPv6 address without brackets).
    pub host: String,
    /// The client port.
    pub port: u16,
}

impl fmt::Display for ZooKeeperHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// ZooKeeper digest credentials. The password is never printed: `Debug`
/// and `Display` show `user:***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    user: String,
    password: String,
}

impl DigestCredentials {
    /// Credentials for `user`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> DigestCredentials {
        DigestCredentials {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password (for the ZooKeeper client only; never log it).
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for DigestCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DigestCredentials({}:***)", self.user)
    }
}

impl fmt::Display for DigestCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:***", self.user)
    }
}

/// A registry URL that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryUrlError {
    /// Nothing was given.
    #[error("the registry URL is empty (expected `memory` or `zk://HOST:PORT[,...][/BASE]`)")]
    Empty,
    /// Neither `memory` nor `zk://`.
    #[error("unknown registry `{0}` (expected `memory` or `zk://HOST:PORT[,...][/BASE]`)")]
    UnknownScheme(String),
    /// `zk://` with no host.
    #[error("a zk:// URL needs at least one HOST:PORT")]
    NoHosts,
    /// An empty entry in the host list, or an empty host name.
    #[error("empty host in the ZooKeeper host list")]
    EmptyHost,
    /// A host without `:PORT`.
    #[error("ZooKeeper host `{0}` has no port (expected HOST:PORT)")]
    MissingPort(String),
    /// A port that is not a number in 1..=65535.
    #[error("bad port `{port}` for ZooKeeper host `{host}`")]
    BadPort {
        /// The host.
        host: String,
        /// The port as written.
        port: String,
    },
    /// A base path with empty, `.` or `..` segments, or a trailing slash.
    #[error("bad ZooKeeper base path `{0}` (expected /segment[/segment...])")]
    BadBasePath(String),
    /// A query parameter other than `session_timeout_ms` and `digest`.
    #[error("unknown registry URL parameter `{0}` (known: session_timeout_ms, digest)")]
    UnknownParameter(String),
    /// A parameter given twice.
    #[error("registry URL parameter `{0}` is given twice")]
    DuplicateParameter(String),
    /// `session_timeout_ms` that is not a positive number.
    #[error("bad session_timeout_ms `{0}` (expected milliseconds, more than 0)")]
    BadSessionTimeout(String),
    /// `digest` that is not `user:password` with a non-empty user.
    #[error("bad digest (expected digest=user:password)")]
    BadDigest,
    /// A `%` escape that is not two hex digits or not UTF-8.
    #[error("bad percent-encoding in registry URL parameter `{0}`")]
    BadEscape(String),
}

impl FromStr for RegistryUrl {
    type Err = RegistryUrlError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let url = url.trim();
        if url.is_empty() {
            return Err(RegistryUrlError::Empty);
        }
        if url.eq_ignore_ascii_case("memory") || url.eq_ignore_ascii_case("memory://") {
            return Ok(RegistryUrl::Memory);
        }
        match url.get(..5) {
            Some(scheme) if scheme.eq_ignore_ascii_case("zk://") => {
                parse_zk(&url[5..]).map(RegistryUrl::ZooKeeper)
            }
            _ => Err(RegistryUrlError::UnknownScheme(url.to_owned())),
        }
    }
}

impl RegistryUrl {
    /// Parses a registry URL.
    pub fn parse(url: &str) -> Result<RegistryUrl, RegistryUrlError> {
        url.parse()
    }
}

fn parse_zk(rest: &str) -> Result<ZooKeeperUrl, RegistryUrlError> {
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (hosts, path) = match location.find('/') {
        Some(slash) => location.split_at(slash),
        None => (location, ""),
    };
    let mut url = ZooKeeperUrl {
        hosts: parse_hosts(hosts)?,
        base_path: parse_base_path(path)?,
        session_timeout: None,
        digest: None,
    };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value =
            percent_decode(value).ok_or_else(|| RegistryUrlError::BadEscape(key.to_owned()))?;
        match key {
            "session_timeout_ms" => {
                if url.session_timeout.is_some() {
                    return Err(RegistryUrlError::DuplicateParameter(key.to_owned()));
                }
                let millis = value
                    .parse::<u64>()
                    .ok()
                    .filter(|millis| *millis > 0)
                    .ok_or_else(|| RegistryUrlError::BadSessionTimeout(value.clone()))?;
                url.session_timeout = Some(Duration::from_millis(millis));
            }
            "digest" => {
                if url.digest.is_some() {
                    return Err(RegistryUrlError::DuplicateParameter(key.to_owned()));
                }
                let (user, password) = value
                    .split_once(':')
                    .filter(|(user, _)| !user.is_empty())
                    .ok_or(RegistryUrlError::BadDigest)?;
                url.digest = Some(DigestCredentials::new(user, password));
            }
            other => return Err(RegistryUrlError::UnknownParameter(other.to_owned())),
        }
    }
    Ok(url)
}

fn parse_hosts(hosts: &str) -> Result<Vec<ZooKeeperHost>, RegistryUrlError> {
    if hosts.is_empty() {
        return Err(RegistryUrlError::NoHosts);
    }
    hosts.split(',').map(parse_host).collect()
}

fn parse_host(entry: &str) -> Result<ZooKeeperHost, RegistryUrlError> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Err(RegistryUrlError::EmptyHost);
    }
    let (host, port) = if let Some(bracketed) = entry.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| RegistryUrlError::MissingPort(entry.to_owned()))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| RegistryUrlError::MissingPort(entry.to_owned()))?;
        (host, port)
    } else {
        entry
            .rsplit_once(':')
            .ok_or_else(|| RegistryUrlError::MissingPort(entry.to_owned()))?
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(RegistryUrlError::EmptyHost);
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| RegistryUrlError::BadPort {
            host: host.to_owned(),
            port: port.to_owned(),
        })?;
    Ok(ZooKeeperHost {
        host: host.to_owned(),
        port,
    })
}

/// `""` and `"/"` mean the default; otherwise `/a/b` with real segments.
fn parse_base_path(path: &str) -> Result<String, RegistryUrlError> {
    if path.is_empty() || path == "/" {
        return Ok(DEFAULT_BASE_PATH.to_owned());
    }
    let bad = path.strip_prefix('/').is_none_or(|segments| {
        segments
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    });
    if bad {
        return Err(RegistryUrlError::BadBasePath(path.to_owned()));
    }
    Ok(path.to_owned())
}

/// Decodes `%XX` escapes; `None` on a bad escape or non-UTF-8 result.
fn percent_decode(value: &str) -> Option<String> {
    if !value.contains('%') {
        return Some(value.to_owned());
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl fmt::Display for RegistryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryUrl::Memory => f.write_str("memory"),
            RegistryUrl::ZooKeeper(zk) => zk.fmt(f),
        }
    }
}

impl fmt::Display for ZooKeeperUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zk://{}{}", self.connect_string(), self.base_path)?;
        let mut separator = '?';
        if let Some(timeout) = self.session_timeout {
            write!(f, "{separator}session_timeout_ms={}", timeout.as_millis())?;
            separator = '&';
        }
        if let Some(digest) = &self.digest {
            write!(f, "{separator}digest={digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zk(url: &str) -> ZooKeeperUrl {
        match url.parse::<RegistryUrl>() {
            Ok(RegistryUrl::ZooKeeper(zk)) => zk,
            other => panic!("{url}: {other:?}"),
        }
    }

    fn host(host: &str, port: u16) -> ZooKeeperHost {
        ZooKeeperHost {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn memory() {
        assert_eq!("memory".parse(), Ok(RegistryUrl::Memory));
        assert_eq!(" memory ".parse(), Ok(RegistryUrl::Memory));
        assert_eq!(RegistryUrl::Memory.to_string(), "memory");
    }

    #[test]
    fn single_host_with_default_base() {
        let url = zk("zk://127.0.0.1:2181");
        assert_eq!(url.hosts, [host("127.0.0.1", 2181)]);
        assert_eq!(url.base_path, "/courier");
        assert_eq!(url.session_timeout, None);
        assert_eq!(url.digest, None);
        assert_eq!(zk("zk://127.0.0.1:2181/").base_path, "/courier");
    }

    #[test]
    fn ensemble_path_and_parameters() {
        let url = zk(
            "zk://zk1:2181,zk2:2182,[::1]:2183/services/prod?session_timeout_ms=4000&digest=app:s3cr%3At",
        );
        assert_eq!(
            url.hosts,
            [host("zk1", 2181), host("zk2", 2182), host("::1", 2183)]
        );
        assert_eq!(url.base_path, "/services/prod");
        assert_eq!(url.session_timeout, Some(Duration::from_millis(4000)));
        let digest = url.digest.clone().expect("digest");
        assert_eq!((digest.user(), digest.password()), ("app", "s3cr:t"));
        assert_eq!(url.connect_string(), "zk1:2181,zk2:2182,[::1]:2183");
    }

    #[test]
    fn the_password_is_never_printed() {
        let url: RegistryUrl = "zk://h:1/b?digest=user:hunter2&session_timeout_ms=10"
            .parse()
            .expect("valid");
        let shown = url.to_string();
        assert_eq!(shown, "zk://h:1/b?session_timeout_ms=10&digest=user:***");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn display_round_trips_without_credentials() {
        for url in [
            "zk://a:1/courier",
            "zk://a:1,[fe80::1]:2/x/y?session_timeout_ms=5",
        ] {
            let parsed: RegistryUrl = url.parse().expect("valid");
            assert_eq!(parsed.to_string(), url);
            assert_eq!(parsed.to_string().parse::<RegistryUrl>(), Ok(parsed));
        }
    }

    #[test]
    fn errors_are_typed() {
        use RegistryUrlError as E;
        let cases: &[(&str, RegistryUrlError)] = &[
            ("", E::Empty),
            ("etcd://x:1", E::UnknownScheme("etcd://x:1".into())),
            ("zk://", E::NoHosts),
            ("zk:///base", E::NoHosts),
            ("zk://a:1,,b:2", E::EmptyHost),
            ("zk://:2181", E::EmptyHost),
            ("zk://host", E::MissingPort("host".into())),
            ("zk://[::1]", E::MissingPort("[::1]".into())),
            (
                "zk://h:99999",
                E::BadPort {
                    host: "h".into(),
                    port: "99999".into(),
                },
            ),
            (
                "zk://h:0",
                E::BadPort {
                    host: "h".into(),
                    port: "0".into(),
                },
            ),
            ("zk://h:1/a//b", E::BadBasePath("/a//b".into())),
            ("zk://h:1/a/", E::BadBasePath("/a/".into())),
            ("zk://h:1/a/..", E::BadBasePath("/a/..".into())),
            ("zk://h:1?foo=1", E::UnknownParameter("foo".into())),
            (
                "zk://h:1?session_timeout_ms=0",
                E::BadSessionTimeout("0".into()),
            ),
            (
                "zk://h:1?session_timeout_ms=x",
                E::BadSessionTimeout("x".into()),
            ),
            (
                "zk://h:1?session_timeout_ms=1&session_timeout_ms=2",
                E::DuplicateParameter("session_timeout_ms".into()),
            ),
            ("zk://h:1?digest=nopassword", E::BadDigest),
            ("zk://h:1?digest=:pw", E::BadDigest),
            ("zk://h:1?digest=u:%zz", E::BadEscape("digest".into())),
        ];
        for (url, expected) in cases {
            assert_eq!(url.parse::<RegistryUrl>().as_ref(), Err(expected), "{url}");
        }
    }
}
