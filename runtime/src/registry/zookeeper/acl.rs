//! Digest credentials and ACLs: who may change the registry's nodes.
//!
//! Without credentials every node is open (`world:anyone` may do anything,
//! as Curator's default). With digest credentials `user:password`, every
//! node the registry creates gets two entries: `digest:user:HASH` may do
//! everything, `world:anyone` may only read. Since ZooKeeper checks the
//! *parent's* ACL for create and delete, nobody else can add or remove an
//! instance under a service node created this way.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zookeeper_client::{Acl, AuthId, Permission};

use crate::registry::DigestCredentials;

/// ZooKeeper's digest id for credentials: `user:BASE64(SHA1(user:password))`
/// (`DigestAuthenticationProvider.generateDigest`). It is what the server
/// stores in an ACL; it is derived from the password, so it is not logged
/// either.
pub(crate) fn digest_id(credentials: &DigestCredentials) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(credentials.user().as_bytes());
    sha1.update(b":");
    sha1.update(credentials.password().as_bytes());
    let hash = STANDARD.encode(sha1.digest().bytes());
    format!("{}:{hash}", credentials.user())
}

/// The ACL of every node the registry creates.
pub(crate) fn node_acls(digest_id: Option<&str>) -> Vec<Acl> {
    match digest_id {
        None => vec![Acl::new(Permission::ALL, AuthId::anyone())],
        Some(id) => vec![
            Acl::new(Permission::ALL, AuthId::new("digest", id)),
            Acl::new(Permission::READ, AuthId::anyone()),
        ],
    }
}

/// Whether `acls` name the same digest user as `ours` with another password
/// hash and do not also grant `ours` (which is what a wrong password looks
/// like).
pub(crate) fn names_user_with_other_password(acls: &[Acl], ours: &str) -> bool {
    let Some((user, _)) = ours.split_once(':') else {
        return false;
    };
    let digest = acls.iter().filter(|acl| acl.scheme() == "digest");
    let mut same_user = false;
    for acl in digest {
        if acl.id() == ours {
            return false;
        }
        if acl.id().split_once(':').map(|(u, _)| u) == Some(user) {
            same_user = true;
        }
    }
    same_user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ids_match_zookeeper() {
        // `DigestAuthenticationProvider.generateDigest("super:test")`, the
        // example of ZooKeeper's administrator guide.
        let id = digest_id(&DigestCredentials::new("super", "test"));
        assert_eq!(id, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }

    #[test]
    fn wrong_password_detection() {
        let ours = digest_id(&DigestCredentials::new("app", "right"));
        let theirs = digest_id(&DigestCredentials::new("app", "other"));
        let stranger = digest_id(&DigestCredentials::new("ops", "x"));
        assert!(names_user_with_other_password(
            &node_acls(Some(&theirs)),
            &ours
        ));
        assert!(!names_user_with_other_password(
            &node_acls(Some(&ours)),
            &ours
        ));
        assert!(!names_user_with_other_password(
            &node_acls(Some(&stranger)),
            &ours
        ));
        assert!(!names_user_with_other_password(&node_acls(None), &ours));
    }
}
