//! "Did you mean": how close two names are, the closest declared name to an
//! unknown one, and the near misses of a known annotation.
//!
//! Distances are optimal string alignment distances (Damerau-Levenshtein
//! without repeated edits of one substring, from `strsim`): inserting,
//! deleting or replacing a letter, or swapping two adjacent letters, is one
//! edit each, so `Itme` is one edit from `Item`. ASCII case is ignored.

/// Names longer than this (in characters) are never compared: the distance
/// takes time proportional to the product of the lengths, and the names come
/// from files that may be hostile (a server's sources, checked by the
/// `courier` CLI).
const MAX_COMPARED_LEN: usize = 128;

/// The edit distance between `a` and `b` (ASCII case ignored); `None` when
/// it is above `max`, or when either name is longer than
/// [`MAX_COMPARED_LEN`].
pub(crate) fn edit_distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let (a_len, b_len) = (a.chars().count(), b.chars().count());
    // Cheap bounds first: the lengths alone need this many insertions.
    if a_len.max(b_len) > MAX_COMPARED_LEN || a_len.abs_diff(b_len) > max {
        return None;
    }
    let distance = strsim::osa_distance(&a.to_ascii_lowercase(), &b.to_ascii_lowercase());
    (distance <= max).then_some(distance)
}

/// The closest candidate to `name`, if one is close enough to suggest: at
/// most a third of `name`'s length in edits (at least 1, at most 3). Ties
/// go to the first candidate given.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let max = (name.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let Some(distance) = edit_distance(name, candidate, max) else {
            continue;
        };
        if best.is_none_or(|(best_distance, _)| distance < best_distance) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// The form two annotation names are compared in: ASCII lowercase, without
/// `_` (`@Hash_Key`, `@hashkey` and `@hash_key` all fold to `hashkey`).
fn folded(name: &str) -> String {
    name.chars()
        .filter(|&c| c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The known name that `name` is a near miss of, if any.
///
/// `name` (not itself in `known`) is a near miss of a known name when their
/// folded forms (see [`folded`]) are at most `max(1, len / 4)` edits apart,
/// `len` being the length of the known name's folded form: one edit for
/// `version`, `timeout` and `hash_key`, two for `idempotent`. So
/// `@Version`, `@time_out`, `@hashkey`, `@idempotnet` and `@timeouts` are
/// near misses; `@deprecated`, `@since`, `@hash` and `@versioned` are not.
/// The nearest known name wins; ties go to the first.
pub(crate) fn near_miss<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    if known.contains(&name) {
        return None;
    }
    let name = folded(name);
    let mut best: Option<(usize, &str)> = None;
    for &candidate in known {
        let target = folded(candidate);
        let max = (target.chars().count() / 4).max(1);
        let Some(distance) = edit_distance(&name, &target, max) else {
            continue;
        };
        if best.is_none_or(|(best_distance, _)| distance < best_distance) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_of_two_adjacent_letters_is_one_edit() {
        assert_eq!(edit_distance("Itme", "Item", 1), Some(1));
        assert_eq!(edit_distance("Ordre", "Order", 1), Some(1));
        assert_eq!(edit_distance("ab", "ba", 1), Some(1));
        // Plain edits still count one each; case is ignored.
        assert_eq!(edit_distance("Ordr", "Order", 1), Some(1));
        assert_eq!(edit_distance("ORDER", "order", 0), Some(0));
        assert_eq!(edit_distance("Xyz", "Order", 3), None);
        // Bounded before any work when the lengths alone differ too much,
        // or the names are too long to compare.
        assert_eq!(edit_distance("a", "abcdef", 2), None);
        let long = "x".repeat(MAX_COMPARED_LEN + 1);
        assert_eq!(edit_distance(&long, &long, 3), None);
        let fits = "x".repeat(MAX_COMPARED_LEN);
        assert_eq!(edit_distance(&fits, &fits, 3), Some(0));
    }

    #[test]
    fn closest_names() {
        assert_eq!(closest("Ordr", ["Order", "Status"]), Some("Order"));
        assert_eq!(closest("Itme", ["Order", "Item"]), Some("Item"));
        assert_eq!(closest("Xyz", ["Order", "Status"]), None);
        assert_eq!(closest("status", ["Status"]), Some("Status"));
        // The nearest wins, not the first close one.
        assert_eq!(closest("Orders", ["Ordered", "Order"]), Some("Order"));
    }

    const KNOWN: &[&str] = &["version", "idempotent", "timeout", "hash_key"];

    #[test]
    fn near_misses_of_known_annotations() {
        for (written, meant) in [
            ("idempotnet", "idempotent"),
            ("idempotant", "idempotent"),
            ("Idempotent", "idempotent"),
            ("idempotence", "idempotent"),
            ("time_out", "timeout"),
            ("timeOut", "timeout"),
            ("timout", "timeout"),
            ("timeouts", "timeout"),
            ("hashkey", "hash_key"),
            ("HashKey", "hash_key"),
            ("hash_kye", "hash_key"),
            ("Version", "version"),
            ("verison", "version"),
        ] {
            assert_eq!(near_miss(written, KNOWN), Some(meant), "{written}");
        }
    }

    #[test]
    fn other_annotations_are_not_near_misses() {
        for written in [
            "version",
            "hash_key",
            "deprecated",
            "since",
            "sensitive",
            "hash",
            "key",
            "versioned",
            "idem",
            "retry",
            "time",
        ] {
            assert_eq!(near_miss(written, KNOWN), None, "{written}");
        }
    }
}
