//! ZooKeeper paths of the layout: `BASE/SERVICE/INSTANCE_ID`, and the
//! checks that keep a service name or an instance id one path segment.

use crate::registry::RegistryError;

/// Checks that `name` can be one ZooKeeper path segment (ZooKeeper's
/// `PathUtils.validatePath` rules).
pub(crate) fn check_segment(what: &'static str, name: &str) -> Result<(), RegistryError> {
    let invalid = |reason| RegistryError::InvalidName {
        what,
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name == "." || name == ".." {
        return Err(invalid("ZooKeeper reserves this name"));
    }
    if name.contains('/') {
        return Err(invalid("it contains `/`"));
    }
    if name.chars().any(is_forbidden) {
        return Err(invalid("it contains a character ZooKeeper does not allow"));
    }
    Ok(())
}

/// Characters ZooKeeper refuses in a path.
fn is_forbidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{f000}'..='\u{f8ff}'
        | '\u{fff0}'..='\u{ffff}')
}

/// Checks a base path: absolute, no trailing slash, each segment valid.
pub(crate) fn check_base_path(path: &str) -> Result<(), RegistryError> {
    let Some(segments) = path.strip_prefix('/') else {
        return Err(RegistryError::InvalidName {
            what: "base path",
            name: path.to_owned(),
            reason: "it must start with `/`",
        });
    };
    if segments.split('/').next() == Some("zookeeper") {
        return Err(RegistryError::InvalidName {
            what: "base path",
            name: path.to_owned(),
            reason: "ZooKeeper reserves /zookeeper",
        });
    }
    segments
        .split('/')
        .try_for_each(|segment| check_segment("base path", segment))
        .map_err(|error| match error {
            RegistryError::InvalidName { what, reason, .. } => RegistryError::InvalidName {
                what,
                name: path.to_owned(),
                reason,
            },
            other => other,
        })
}

/// `BASE/SERVICE`.
pub(crate) fn service_path(base: &str, service: &str) -> String {
    format!("{base}/{service}")
}

/// `BASE/SERVICE/ID`.
pub(crate) fn instance_path(base: &str, service: &str, id: &str) -> String {
    format!("{base}/{service}/{id}")
}

/// The child segment of `path` directly below `parent`, if it is one.
pub(crate) fn direct_child<'a>(parent: &str, path: &'a str) -> Option<&'a str> {
    path.strip_prefix(parent)?
        .strip_prefix('/')
        .filter(|child| !child.is_empty() && !child.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        for good in ["hello.Greeter", "shop.Orders:2", "6f1c-0", "ünï"] {
            check_segment("service name", good).expect(good);
        }
        for bad in ["", ".", "..", "a/b", "a\0b", "a\u{1}", "\u{fff5}"] {
            assert!(
                matches!(
                    check_segment("service name", bad),
                    Err(RegistryError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn base_paths() {
        for good in ["/courier", "/a/b.c", "/a/zookeeper"] {
            check_base_path(good).expect(good);
        }
        for bad in ["courier", "/", "/a/", "/a//b", "/zookeeper", "/a/.."] {
            let error = check_base_path(bad).expect_err(bad);
            assert!(
                matches!(&error, RegistryError::InvalidName { name, .. } if name == bad),
                "{error:?}"
            );
        }
    }

    #[test]
    fn paths_and_children() {
        assert_eq!(service_path("/courier", "s"), "/courier/s");
        assert_eq!(instance_path("/courier", "s", "i"), "/courier/s/i");
        assert_eq!(direct_child("/courier/s", "/courier/s/i"), Some("i"));
        assert_eq!(direct_child("/courier/s", "/courier/s"), None);
        assert_eq!(direct_child("/courier/s", "/courier/s/i/deeper"), None);
        assert_eq!(direct_child("/courier/s", "/courier/sx/i"), None);
    }
}
