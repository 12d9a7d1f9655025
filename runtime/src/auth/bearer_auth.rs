//! [`BearerTokenAuth`]: the server interceptor that checks bearer tokens
//! and a per-method allow-list.

use std::collections::HashMap;
use std::sync::Arc;

use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::AUTHORIZATION;
use super::bearer_token::{TokenError, validate};
use crate::BoxFuture;
use crate::context::{CallContext, Metadata};
use crate::error::{Status, StatusCode};
use crate::server::ServerInterceptor;

/// One configured token.
struct TokenEntry {
    token: Box<[u8]>,
    principal: Arc<str>,
}

/// Who may call a method or a service.
#[derive(Debug, Clone)]
enum Access {
    /// Anyone, without a token.
    Anonymous,
    /// Only these principals.
    Principals(Box<[Arc<str>]>),
}

/// The rules of one service.
#[derive(Debug, Default)]
struct ServiceRules {
    /// For every method without its own rule.
    service: Option<Access>,
    /// Per method wire name.
    methods: HashMap<String, Access>,
}

/// A server interceptor that authenticates calls by bearer token and
/// authorizes them by principal.
///
/// - Every call must carry `authorization: Bearer <token>` with one of the
///   configured tokens, else it is answered status 12 (unauthenticated).
///   The scheme name is matched without regard to case.
/// - The token's principal is recorded in the call's context
///   ([`CallContext::principal`]), and the `authorization` entry is
///   removed from the metadata the handler sees.
/// - A method restricted to some principals
///   ([`restrict_method`](Self::restrict_method), or its whole service with
///   [`restrict_service`](Self::restrict_service); the method's rule wins)
///   answers any other principal status 13 (permission denied). Methods
///   with no rule are open to every known principal.
/// - A method marked [`allow_anonymous`](Self::allow_anonymous) needs no
///   token (a token sent anyway must still be valid).
///
/// The candidate token is compared with every configured token in
/// constant time (`subtle`), without stopping at a match, so the time
/// taken does not say which token matched or how much of one did; only
/// token lengths are not hidden. `Debug` shows principals, never tokens.
#[derive(Default)]
pub struct BearerTokenAuth {
    tokens: Vec<TokenEntry>,
    rules: HashMap<String, ServiceRules>,
}

impl BearerTokenAuth {
    /// No tokens and no rules (every call is then answered status 12).
    pub fn new() -> BearerTokenAuth {
        BearerTokenAuth::default()
    }

    /// Accepts `token` for `principal`. A principal may have several
    /// tokens (e.g. while rotating); a token given again moves to the new
    /// principal.
    pub fn with_token(
        mut self,
        principal: impl Into<Arc<str>>,
        token: impl AsRef<str>,
    ) -> Result<BearerTokenAuth, TokenError> {
        let token = token.as_ref();
        validate(token)?;
        self.tokens
            .retain(|entry| *entry.token != *token.as_bytes());
        self.tokens.push(TokenEntry {
            token: token.as_bytes().into(),
            principal: principal.into(),
        });
        Ok(self)
    }

    /// Lets only `principals` call every method of `service` (its wire
    /// name, `shop.orders.OrderService:2`) that has no rule of its own.
    pub fn restrict_service<P: Into<Arc<str>>>(
        mut self,
        service: impl Into<String>,
        principals: impl IntoIterator<Item = P>,
    ) -> BearerTokenAuth {
        let access = Access::Principals(principals.into_iter().map(Into::into).collect());
        self.rules.entry(service.into()).or_default().service = Some(access);
        self
    }

    /// Lets only `principals` call `method` of `service` (wire names).
    pub fn restrict_method<P: Into<Arc<str>>>(
        mut self,
        service: impl Into<String>,
        method: impl Into<String>,
        principals: impl IntoIterator<Item = P>,
    ) -> BearerTokenAuth {
        let access = Access::Principals(principals.into_iter().map(Into::into).collect());
        self.rules
            .entry(service.into())
            .or_default()
            .methods
            .insert(method.into(), access);
        self
    }

    /// Lets anyone call `method` of `service` without a token (a health
    /// check, a public lookup).
    pub fn allow_anonymous(
        mut self,
        service: impl Into<String>,
        method: impl Into<String>,
    ) -> BearerTokenAuth {
        self.rules
            .entry(service.into())
            .or_default()
            .methods
            .insert(method.into(), Access::Anonymous);
        self
    }

    /// The rule for a call, if any (no allocation: lookups by `&str`).
    fn access(&self, service: &str, method: &str) -> Option<&Access> {
        let rules = self.rules.get(service)?;
        rules.methods.get(method).or(rules.service.as_ref())
    }

    /// The principal whose token is `candidate`: compared with every
    /// token, in constant time for tokens of one length, never stopping
    /// early.
    fn principal_of(&self, candidate: &[u8]) -> Option<&Arc<str>> {
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, entry) in self.tokens.iter().enumerate() {
            let matches = entry.token.ct_eq(candidate);
            index.conditional_assign(&(i as u64), matches);
            found |= matches;
        }
        let index = usize::try_from(index).ok()?;
        bool::from(found)
            .then(|| self.tokens.get(index).map(|entry| &entry.principal))
            .flatten()
    }

    /// Authenticates and authorizes one call: removes the credentials from
    /// its metadata and records its principal.
    fn check(&self, call: &mut CallContext) -> Result<(), Status> {
        let principal = self.decide(call.service(), call.method(), call.metadata())?;
        call.metadata_mut().remove(AUTHORIZATION);
        if let Some(principal) = principal {
            call.set_principal(principal);
        }
        Ok(())
    }

    /// The principal of a call to `service`/`method` with `metadata` (none
    /// for an anonymous call), or the status that rejects it.
    fn decide(
        &self,
        service: &str,
        method: &str,
        metadata: &Metadata,
    ) -> Result<Option<Arc<str>>, Status> {
        let access = self.access(service, method);
        let Some(value) = metadata.get(AUTHORIZATION) else {
            return match access {
                Some(Access::Anonymous) => Ok(None),
                _ => Err(Status::new(
                    StatusCode::Unauthenticated,
                    "missing bearer token (metadata `authorization: Bearer <token>`)",
                )),
            };
        };
        let token = bearer_token(value).ok_or_else(|| {
            Status::new(
                StatusCode::Unauthenticated,
                "the `authorization` metadata is not a bearer token",
            )
        })?;
        let principal = self
            .principal_of(token.as_bytes())
            .ok_or_else(|| Status::new(StatusCode::Unauthenticated, "invalid bearer token"))?;
        if let Some(Access::Principals(allowed)) = access {
            if !allowed.contains(principal) {
                return Err(Status::new(
                    StatusCode::PermissionDenied,
                    format!("principal `{principal}` may not call {service}/{method}"),
                ));
            }
        }
        Ok(Some(Arc::clone(principal)))
    }
}

/// The token of `Bearer <token>` (scheme matched without regard to case).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl std::fmt::Debug for BearerTokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let principals: Vec<&str> = self.tokens.iter().map(|e| &*e.principal).collect();
        f.debug_struct("BearerTokenAuth")
            .field("principals", &principals)
            .field("rules", &self.rules)
            .finish()
    }
}

impl ServerInterceptor for BearerTokenAuth {
    fn intercept<'a>(&'a self, call: &'a mut CallContext) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(std::future::ready(self.check(call)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> BearerTokenAuth {
        BearerTokenAuth::new()
            .with_token("alice", "alice-token")
            .and_then(|a| a.with_token("ops", "ops-token"))
            .expect("valid tokens")
            .restrict_service("svc", ["ops"])
            .restrict_method("svc", "read", ["alice", "ops"])
            .allow_anonymous("svc", "health")
    }

    /// The principal `auth` gives a call to `svc`/`method`, or its status.
    fn decide(
        auth: &BearerTokenAuth,
        method: &str,
        authorization: Option<&str>,
    ) -> Result<Option<String>, StatusCode> {
        let mut metadata = Metadata::new();
        if let Some(value) = authorization {
            metadata.insert(AUTHORIZATION, value);
        }
        auth.decide("svc", method, &metadata)
            .map(|principal| principal.map(|p| p.to_string()))
            .map_err(|status| status.code())
    }

    #[test]
    fn the_matching_token_gives_its_principal() {
        let auth = auth();
        assert_eq!(auth.principal_of(b"ops-token").map(|p| &**p), Some("ops"));
        assert_eq!(
            auth.principal_of(b"alice-token").map(|p| &**p),
            Some("alice")
        );
        assert_eq!(auth.principal_of(b"alice-tokem"), None);
        assert_eq!(auth.principal_of(b""), None);
    }

    #[test]
    fn rules_apply_per_method_then_per_service() {
        let auth = auth();
        let alice = Ok(Some("alice".to_owned()));
        assert_eq!(decide(&auth, "read", Some("Bearer alice-token")), alice);
        assert_eq!(
            decide(&auth, "write", Some("bearer   alice-token")),
            Err(StatusCode::PermissionDenied)
        );
        assert_eq!(
            decide(&auth, "write", Some("Bearer ops-token")),
            Ok(Some("ops".to_owned()))
        );
        assert_eq!(
            decide(&auth, "read", None),
            Err(StatusCode::Unauthenticated)
        );
        assert_eq!(
            decide(&auth, "read", Some("Basic YTpi")),
            Err(StatusCode::Unauthenticated)
        );
        assert_eq!(
            decide(&auth, "read", Some("Bearer ")),
            Err(StatusCode::Unauthenticated)
        );
        assert_eq!(decide(&auth, "health", None), Ok(None));
        assert_eq!(
            decide(&auth, "health", Some("Bearer nope")),
            Err(StatusCode::Unauthenticated)
        );
    }

    #[test]
    fn a_token_given_twice_moves_to_the_last_principal() {
        let auth = BearerTokenAuth::new()
            .with_token("a", "same")
            .and_then(|a| a.with_token("b", "same"))
            .expect("valid");
        assert_eq!(auth.principal_of(b"same").map(|p| &**p), Some("b"));
        assert_eq!(auth.tokens.len(), 1);
    }

    #[test]
    fn debug_never_shows_tokens() {
        let shown = format!("{:?}", auth());
        assert!(shown.contains("alice") && shown.contains("ops"), "{shown}");
        assert!(!shown.contains("-token"), "{shown}");
    }
}
