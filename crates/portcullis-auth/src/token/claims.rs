//! The JSON inside a token: verified [`Claims`], and the `Unverified...`
//! views that diagnostics may show before (or without) checking a signature.

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// The `aud` claim: one audience or several.
///
/// A single audience is serialized as a JSON string, because distribution
/// 2.8 reads `aud` into a Go `string` and rejects an array. Both forms are
/// accepted when reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(Vec<String>);

impl Audience {
    /// One audience (serialized as a string).
    #[must_use]
    pub fn one(audience: impl Into<String>) -> Self {
        Self(vec![audience.into()])
    }

    /// Several audiences (serialized as an array unless there is exactly one).
    #[must_use]
    pub const fn many(audiences: Vec<String>) -> Self {
        Self(audiences)
    }

    /// Whether `audience` is one of them (exact, case-sensitive match).
    #[must_use]
    pub fn contains(&self, audience: &str) -> bool {
        self.0.iter().any(|a| a == audience)
    }

    /// All audiences.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl From<&str> for Audience {
    fn from(s: &str) -> Self {
        Self::one(s)
    }
}

impl From<String> for Audience {
    fn from(s: String) -> Self {
        Self::one(s)
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        match OneOrMany::deserialize(deserializer) {
            Ok(OneOrMany::One(s)) => Ok(Self(vec![s])),
            Ok(OneOrMany::Many(v)) => Ok(Self(v)),
            Err(_) => Err(de::Error::custom(
                "aud must be a string or an array of strings",
            )),
        }
    }
}

/// One entry of the `access` claim: what the bearer may do to one resource.
///
/// For a repository: `{"type":"repository","name":"library/alpine",
/// "actions":["pull","push"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAccess {
    /// Resource type: `repository`, `registry`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Resource name, such as a repository name or `catalog`.
    pub name: String,
    /// Granted actions (`pull`, `push`, `delete`, `*`). `null` reads as none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub actions: Vec<String>,
}

/// Claims of an access token: the Docker token spec's `access` plus the
/// registered claims.
///
/// Reading requires `iss`, `aud`, `exp` and `iat`; `sub`, `jti` and `access`
/// default to empty and `nbf` to 0 (no lower bound), as in distribution.
/// Unknown claims are ignored; a repeated claim is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer; must equal the verifier's configured issuer.
    pub iss: String,
    /// Subject: the user (empty for anonymous access).
    #[serde(default)]
    pub sub: String,
    /// Audience: the service the token is for.
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch (0 when absent).
    #[serde(default)]
    pub nbf: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Unique token ID.
    #[serde(default)]
    pub jti: String,
    /// Granted access. `null` (what Go writes for an empty list) reads as none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub access: Vec<ResourceAccess>,
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A token's header, read WITHOUT checking the signature. For diagnostics
/// only: nothing in it may be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UnverifiedHeader {
    /// Signature algorithm named by the token.
    pub alg: String,
    /// Token type, usually `JWT`.
    #[serde(default)]
    pub typ: Option<String>,
    /// Key ID.
    #[serde(default)]
    pub kid: Option<String>,
    /// Certificate chain (standard base64 DER, leaf first).
    #[serde(default)]
    pub x5c: Option<Vec<String>>,
    /// An embedded public key.
    #[serde(default)]
    pub jwk: Option<serde_json::Value>,
    /// Critical header extensions (portcullis understands none).
    #[serde(default)]
    pub crit: Option<serde_json::Value>,
}

/// A token's claims, read WITHOUT checking the signature or any claim. For
/// diagnostics only (`doctor`): every field is optional so that a broken
/// token can still be described.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct UnverifiedClaims {
    /// Issuer.
    pub iss: Option<String>,
    /// Subject.
    pub sub: Option<String>,
    /// Audience.
    pub aud: Option<Audience>,
    /// Expiry, seconds since the epoch.
    pub exp: Option<u64>,
    /// Not before, seconds since the epoch.
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch.
    pub iat: Option<u64>,
    /// Token ID.
    pub jti: Option<String>,
    /// Access entries.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub access: Vec<ResourceAccess>,
}

/// Header and claims of a token, read WITHOUT verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedToken {
    /// The header.
    pub header: UnverifiedHeader,
    /// The claims.
    pub claims: UnverifiedClaims,
}
