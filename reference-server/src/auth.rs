//! Who is calling: verified identities from JWTs.
//!
//! The shell verifies a token (an `Authenticate` frame's `User` token, an HTTP
//! call's `Authorization: Bearer` header) before the core sees it, because a
//! signature check needs keys and the clock and the core has neither; the
//! core only ever holds an [`Identity`] that passed. Verification is
//! `jsonwebtoken`'s, never ours: a shared secret (HS256, for tests) or the
//! public keys of a JWKS file, with `exp`, `sub` and `iss` required and the
//! issuer and audience checked when configured. `alg: none` is refused by
//! construction: only the algorithms of the configured keys are accepted.

use std::sync::Arc;

use convex_sync_types::AuthenticationToken;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// A verified caller, as functions see it (`ctx.auth.getUserIdentity()`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// The `sub` claim.
    pub subject: Arc<str>,
    /// The `iss` claim.
    pub issuer: Arc<str>,
    /// The `name` claim, if the token has one.
    pub name: Option<Arc<str>>,
}

impl Identity {
    /// Convex's stable id for a user: `issuer|subject`.
    pub fn token_identifier(&self) -> String {
        format!("{}|{}", self.issuer, self.subject)
    }

    /// How the identity signs its work: its name, else its subject.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.subject)
    }
}

/// The claims syncspec reads, and writes when it mints a test token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the user's id at the issuer.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Audience (Convex's `applicationID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl Claims {
    /// Claims for `subject` at `issuer`, valid from `now_s` for an hour.
    pub fn new(subject: &str, issuer: &str, now_s: u64) -> Claims {
        Claims {
            sub: subject.to_owned(),
            iss: issuer.to_owned(),
            exp: now_s + 3600,
            iat: Some(now_s),
            name: None,
            aud: None,
        }
    }

    /// The same claims with a display name.
    pub fn named(mut self, name: &str) -> Claims {
        self.name = Some(name.to_owned());
        self
    }
}

/// Signs `claims` as an HS256 JWT with a shared secret: how tests, the suite
/// and the load generator make tokens a server started with that secret trusts.
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret))
        .expect("HS256 signing of plain claims cannot fail")
}

/// Seconds since the epoch, for minting.
pub fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The identity a JWT claims, read without verifying anything (jsonwebtoken's
/// own `insecure_decode_claims`): only `sub` is needed.
fn unverified_identity(jwt: &str) -> Option<Identity> {
    #[derive(Deserialize)]
    struct Claimed {
        sub: String,
        #[serde(default)]
        iss: String,
        name: Option<String>,
    }
    let c: Claimed = jsonwebtoken::dangerous::insecure_decode_claims(jwt).ok()?;
    Some(Identity { subject: c.sub.into(), issuer: c.iss.into(), name: c.name.map(Into::into) })
}

/// Why the auth configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// The JWKS file is not a JWK set.
    #[error("not a JWKS document: {0}")]
    Jwks(serde_json::Error),
    /// A key of the set could not be used.
    #[error("key {kid:?} of the JWKS: {detail}")]
    Key {
        /// The key's id, if it has one.
        kid: Option<String>,
        /// What was wrong.
        detail: String,
    },
    /// The set holds no key.
    #[error("the JWKS holds no key")]
    Empty,
}

#[derive(Clone)]
struct Key {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("algorithms", &self.algorithms).finish_non_exhaustive()
    }
}

/// Checks tokens against the keys the server was given.
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    keys: Vec<Key>,
    issuer: Option<String>,
    audience: Option<String>,
    /// The `accept-any-token` fault: claims are read, nothing is verified.
    believe_any: bool,
}

impl Verifier {
    /// No keys: every `User` token is refused.
    pub fn none() -> Verifier {
        Verifier::default()
    }

    /// Believes any token's claims without verifying them: the
    /// `accept-any-token` fault, which shows what believing tokens costs.
    pub fn believing_any() -> Verifier {
        Verifier { believe_any: true, ..Verifier::default() }
    }

    /// HS256 tokens signed with `secret`.
    pub fn shared_secret(secret: &[u8]) -> Verifier {
        let key = Key { kid: None, algorithms: vec![Algorithm::HS256], decoding: DecodingKey::from_secret(secret) };
        Verifier { keys: vec![key], ..Verifier::default() }
    }

    /// Tokens signed by any key of a JWKS document (RSA, EC or OKP keys).
    pub fn from_jwks(json: &str) -> Result<Verifier, AuthConfigError> {
        let set: JwkSet = serde_json::from_str(json).map_err(AuthConfigError::Jwks)?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone();
            let decoding = DecodingKey::from_jwk(jwk)
                .map_err(|e| AuthConfigError::Key { kid: kid.clone(), detail: e.to_string() })?;
            let algorithms = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::OctetKey(_), _) => {
                    return Err(AuthConfigError::Key { kid, detail: "a JWKS holds public keys, not secrets".into() })
                }
                (_, Some(alg)) => match alg.to_string().parse::<Algorithm>() {
                    Ok(alg) => vec![alg],
                    Err(_) => {
                        return Err(AuthConfigError::Key { kid, detail: format!("algorithm {alg} is not for signing") })
                    }
                },
                (AlgorithmParameters::RSA(_), None) => {
                    vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512]
                }
                (AlgorithmParameters::EllipticCurve(_), None) => vec![Algorithm::ES256, Algorithm::ES384],
                (AlgorithmParameters::OctetKeyPair(_), None) => vec![Algorithm::EdDSA],
                (_, None) => {
                    return Err(AuthConfigError::Key { kid, detail: "a key type syncspec does not know".into() })
                }
            };
            keys.push(Key { kid, algorithms, decoding });
        }
        if keys.is_empty() {
            return Err(AuthConfigError::Empty);
        }
        Ok(Verifier { keys, ..Verifier::default() })
    }

    /// Also require this `iss`.
    pub fn with_issuer(mut self, issuer: Option<String>) -> Verifier {
        self.issuer = issuer;
        self
    }

    /// Also require this `aud`.
    pub fn with_audience(mut self, audience: Option<String>) -> Verifier {
        self.audience = audience;
        self
    }

    /// Whether any key is configured.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Who an `Authenticate` token (or an `Authorization` header) names:
    /// nobody for `None`, the verified caller of a `User` JWT, or why it is
    /// refused; admin keys are refused.
    pub fn identity(&self, token: &AuthenticationToken) -> Result<Option<Identity>, String> {
        match token {
            AuthenticationToken::None => Ok(None),
            AuthenticationToken::User(jwt) => self.verify(jwt).map(Some),
            AuthenticationToken::Admin(..) => {
                Err("admin keys are not accepted by the syncspec reference server".into())
            }
        }
    }

    /// Verifies a JWT and returns who it names, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Identity, String> {
        if self.believe_any {
            return unverified_identity(token).ok_or_else(|| "could not read the token's claims".into());
        }
        if self.keys.is_empty() {
            return Err("this server has no keys to verify tokens with (serve --auth-jwks or --auth-secret)".into());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        let candidates: Vec<&Key> = self
            .keys
            .iter()
            .filter(|k| k.algorithms.contains(&header.alg))
            .filter(|k| header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
            .collect();
        if candidates.is_empty() {
            return Err(format!("no configured key verifies {:?} tokens (kid {:?})", header.alg, header.kid));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.validate_aud = self.audience.is_some();
        if let Some(aud) = &self.audience {
            validation.set_audience(&[aud]);
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        let mut last = String::new();
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation) {
                Ok(data) => {
                    let c = data.claims;
                    return Ok(Identity { subject: c.sub.into(), issuer: c.iss.into(), name: c.name.map(Into::into) });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("token refused: {last}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const SECRET: &[u8] = b"a test secret";

    #[test]
    fn a_minted_token_verifies_and_names_its_caller() {
        let token = mint_hs256(SECRET, &Claims::new("alice", "https://issuer.test", now_s()).named("Alice"));
        let identity = Verifier::shared_secret(SECRET).verify(&token).unwrap();
        assert_eq!(&*identity.subject, "alice");
        assert_eq!(identity.display_name(), "Alice");
        assert_eq!(identity.token_identifier(), "https://issuer.test|alice");
    }

    #[test]
    fn wrong_key_expired_unsigned_and_wrong_issuer_are_refused() {
        let verifier = Verifier::shared_secret(SECRET);
        let claims = Claims::new("alice", "iss", now_s());
        assert!(verifier.verify(&mint_hs256(b"another secret", &claims)).is_err());
        let expired = Claims { exp: now_s() - 3600, ..claims.clone() };
        assert!(verifier.verify(&mint_hs256(SECRET, &expired)).unwrap_err().contains("xpired"));
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let payload = serde_json::to_string(&claims).unwrap();
        let unsigned = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&payload));
        assert!(verifier.verify(&unsigned).is_err());
        let strict = Verifier::shared_secret(SECRET).with_issuer(Some("other".into()));
        assert!(strict.verify(&mint_hs256(SECRET, &claims)).is_err());
        assert!(Verifier::none().verify(&mint_hs256(SECRET, &claims)).is_err());
        assert!(verifier.verify("garbage").is_err());
    }

    /// A test-only P-256 key pair: its private key as PKCS#8 DER, and its
    /// public half as a JWKS file, as an identity provider publishes it.
    const ES256_PRIVATE: &[u8] = include_bytes!("../tests/data/es256-private.pk8.der");
    const ES256_JWKS: &str = include_str!("../tests/data/es256.jwks.json");

    fn es256(claims: &Claims, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(ES256_PRIVATE)).unwrap()
    }

    #[test]
    fn a_jwks_verifies_its_providers_tokens_and_nothing_else() {
        let verifier = Verifier::from_jwks(ES256_JWKS).unwrap().with_audience(Some("syncspec-app".into()));
        let mut claims = Claims::new("grace", "https://provider.test", now_s()).named("Grace");
        claims.aud = Some("syncspec-app".into());
        let identity = verifier.verify(&es256(&claims, Some("test-es256"))).unwrap();
        assert_eq!((&*identity.subject, identity.display_name()), ("grace", "Grace"));
        assert!(verifier.verify(&es256(&claims, None)).is_ok(), "a token without kid tries every key");
        assert!(verifier.verify(&es256(&claims, Some("another-key"))).is_err(), "a kid the set lacks");
        let elsewhere = Claims { aud: Some("another-app".into()), ..claims.clone() };
        assert!(verifier.verify(&es256(&elsewhere, Some("test-es256"))).is_err(), "the wrong audience");
        // An HS256 token "signed" with the public key's text must not pass (algorithm confusion).
        assert!(verifier.verify(&mint_hs256(ES256_JWKS.as_bytes(), &claims)).is_err());
    }

    #[test]
    fn only_the_faulty_verifier_believes_an_unsigned_token() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let unsigned = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(r#"{"sub":"alice"}"#));
        let token = AuthenticationToken::User(unsigned);
        assert!(Verifier::none().identity(&token).is_err());
        assert!(Verifier::shared_secret(SECRET).identity(&token).is_err());
        let believed = Verifier::believing_any().identity(&token).unwrap().unwrap();
        assert_eq!(&*believed.subject, "alice");
        assert_eq!(Verifier::none().identity(&AuthenticationToken::None), Ok(None));
        assert!(Verifier::believing_any().identity(&AuthenticationToken::Admin("key".into(), None)).is_err());
    }

    #[test]
    fn a_jwks_of_secrets_or_nothing_is_refused() {
        assert!(matches!(Verifier::from_jwks(r#"{"keys":[]}"#), Err(AuthConfigError::Empty)));
        assert!(Verifier::from_jwks("{").is_err());
        let oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}"#;
        assert!(Verifier::from_jwks(oct).is_err());
    }
}
