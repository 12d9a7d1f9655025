//! [`Metadata`]: the string key/value pairs of a request.

/// String key/value pairs that travel with a request (PROTOCOL.md, request
/// body). Kept in arrival order; keys may repeat.
///
/// `Debug` shows every key but hides the values of credential keys
/// (`authorization`, any case), so logging a context or a request does not
/// log a token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, String)>,
}

/// Keys whose values `Debug` never shows.
const SECRET_KEYS: [&str; 2] = ["authorization", "proxy-authorization"];

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.entries {
            if SECRET_KEYS
                .iter()
                .any(|secret| key.eq_ignore_ascii_case(secret))
            {
                map.entry(key, &format_args!("<redacted>"));
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

impl Metadata {
    /// No entries.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Appends an entry.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.push((key.into(), value.into()));
    }

    /// Removes every entry with `key`; returns how many there were.
    pub fn remove(&mut self, key: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(k, _)| k != key);
        before - self.entries.len()
    }

    /// The first value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The heap the entries take, as a `malloc` like glibc's sees it: each
    /// string's and the vector's capacity, plus an 8-byte header, rounded
    /// up to 16 bytes, 32 at least (other allocators round differently, by
    /// a few bytes). The server charges it to the connection a call came
    /// on: within the default limits (64 entries, 8 KiB of keys and
    /// values) at most about 14 KiB; without entries, nothing, and no
    /// work beyond a capacity check.
    pub(crate) fn heap_bytes(&self) -> usize {
        fn allocation(capacity: usize) -> usize {
            if capacity == 0 {
                0
            } else {
                capacity.saturating_add(8).next_multiple_of(16).max(32)
            }
        }
        if self.entries.capacity() == 0 {
            return 0;
        }
        let strings: usize = self
            .entries
            .iter()
            .map(|(key, value)| allocation(key.capacity()) + allocation(value.capacity()))
            .sum();
        strings + allocation(self.entries.capacity() * std::mem::size_of::<(String, String)>())
    }
}

impl FromIterator<(String, String)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Metadata {
            entries: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_repeat_and_remove_takes_them_all() {
        let mut metadata = Metadata::new();
        metadata.insert("a", "1");
        metadata.insert("b", "2");
        metadata.insert("a", "3");
        assert_eq!(metadata.get("a"), Some("1"));
        assert_eq!(metadata.remove("a"), 2);
        assert_eq!(metadata.iter().collect::<Vec<_>>(), [("b", "2")]);
        assert_eq!(metadata.remove("zzz"), 0);
    }

    #[test]
    fn debug_hides_credentials() {
        let mut metadata = Metadata::new();
        metadata.insert("Authorization", "Bearer s3cret");
        metadata.insert("trace-id", "abc");
        let shown = format!("{metadata:?}");
        assert_eq!(shown, r#"{"Authorization": <redacted>, "trace-id": "abc"}"#);
    }

    #[test]
    fn heap_bytes_counts_every_allocation_with_its_header() {
        assert_eq!(Metadata::new().heap_bytes(), 0);
        // One entry: a 1-byte key (32 bytes, the smallest allocation), an
        // empty value (no allocation), the vector's 48 bytes (+ 8, to 64).
        let one: Metadata = [("k".to_owned(), String::new())].into_iter().collect();
        assert_eq!(one.heap_bytes(), 32 + 64);
        // The most the default limits let through: 64 entries, 8 KiB of
        // keys and values.
        let most: Metadata = (0..64)
            .map(|i| (format!("{i:03}"), "v".repeat(8 * 1024 / 64 - 3)))
            .collect();
        let text = 8 * 1024;
        let bytes = most.heap_bytes();
        assert!(bytes > text + 64 * 48, "{bytes}");
        assert!(bytes <= 14 * 1024 + 512, "{bytes}");
    }
}
