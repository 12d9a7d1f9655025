//! [`BearerToken`]: the client interceptor that sends a bearer token.

use crate::BoxFuture;
use crate::client::{ClientInterceptor, OutgoingRequest};
use crate::error::Status;

use super::AUTHORIZATION;

/// A token that can't be sent as a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is empty.
    #[error("a bearer token can't be empty")]
    Empty,
    /// The token has a character that is not visible ASCII (a space, a
    /// control character, or non-ASCII); the token itself is not shown.
    #[error("a bearer token may hold only visible ASCII characters (found one at byte {position})")]
    InvalidCharacter {
        /// The byte offset of the first bad character.
        position: usize,
    },
}

/// Checks that `token` can be a bearer token: non-empty, visible ASCII.
pub(crate) fn validate(token: &str) -> Result<(), TokenError> {
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    match token.bytes().position(|b| !b.is_ascii_graphic()) {
        Some(position) => Err(TokenError::InvalidCharacter { position }),
        None => Ok(()),
    }
}

/// A client interceptor that sends `authorization: Bearer <token>` with
/// every call of its channel:
/// `Channel::connect(addr).await?.with_interceptor(BearerToken::new(token)?)`.
///
/// A call whose metadata already has an `authorization` entry (set per
/// call in its options) keeps it. `Debug` never shows the token.
#[derive(Clone)]
pub struct BearerToken {
    /// `Bearer <token>`, built once.
    header: String,
}

impl BearerToken {
    /// A bearer token: non-empty, visible ASCII characters only.
    pub fn new(token: impl AsRef<str>) -> Result<BearerToken, TokenError> {
        let token = token.as_ref();
        validate(token)?;
        Ok(BearerToken {
            header: format!("Bearer {token}"),
        })
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl ClientInterceptor for BearerToken {
    fn intercept<'a>(
        &'a self,
        request: &'a mut OutgoingRequest,
    ) -> BoxFuture<'a, Result<(), Status>> {
        if request.metadata().get(AUTHORIZATION).is_none() {
            request
                .metadata_mut()
                .insert(AUTHORIZATION, self.header.clone());
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_and_never_shown() {
        assert_eq!(BearerToken::new("").err(), Some(TokenError::Empty));
        let error = BearerToken::new("abc def").err();
        assert_eq!(error, Some(TokenError::InvalidCharacter { position: 3 }));
        assert!(
            !error
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("abc")
        );
        assert!(BearerToken::new("tok\u{e9}n").is_err());
        let token = BearerToken::new("s3cret-token").expect("valid");
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
