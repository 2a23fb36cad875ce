//! TLS versions, cipher suites, client-certificate modes and JWS signing
//! algorithms, by the names the configuration gives them: the one table of
//! those names.
//!
//! Each is an enum with `FromStr`, `Display` and the list of accepted names
//! (for the hints of `validate()`). The configuration keeps a value it does
//! not know as [`Named::Unknown`], so that loading succeeds and `validate()`
//! can say what is wrong with the line it is on; the server maps the known
//! values to rustls and token types, and refuses the rest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a `Copy` enum whose variants each have one canonical name (and
/// maybe older aliases), with `ALL`, `as_str`, `names`, `Display`, `FromStr`
/// (exact names) and serde as the name, from one table.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal, ignore_case = $ignore_case:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
        aliases { $($alias:literal => $target:ident,)* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the names are listed in messages.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The canonical name.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The accepted names (canonical ones, then older aliases).
            pub const NAMES: &'static [&'static str] = &[$($text,)+ $($alias,)*];

            /// [`Self::NAMES`] as an iterator, for messages.
            pub fn names() -> impl Iterator<Item = &'static str> + Clone {
                Self::NAMES.iter().copied()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            /// Exact names, as distribution (and Go, and RFC 7518) spell them;
            /// portcullis's own lower-case words in any case.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let lower;
                let name = if $ignore_case {
                    lower = s.to_ascii_lowercase();
                    lower.as_str()
                } else {
                    s
                };
                match name {
                    $($text => Ok(Self::$variant),)+
                    $($alias => Ok(Self::$target),)*
                    _ => Err(UnknownName {
                        what: $what,
                        name: s.to_owned(),
                    }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = String::deserialize(d)?;
                name.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A name that is not one of the accepted names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}`")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

named_enum! {
    /// `http.tls.minimumtls`: Go's names of TLS versions.
    pub enum TlsVersion ("TLS version", ignore_case = false) {
        Tls10 = "tls1.0",
        Tls11 = "tls1.1",
        Tls12 = "tls1.2",
        Tls13 = "tls1.3",
    }
    aliases {}
}

named_enum! {
    /// `http.tls.ciphersuites`: Go's cipher suite names, as distribution
    /// accepts them.
    pub enum CipherSuite ("cipher suite", ignore_case = false) {
        Aes128GcmSha256 = "TLS_AES_128_GCM_SHA256",
        Aes256GcmSha384 = "TLS_AES_256_GCM_SHA384",
        Chacha20Poly1305Sha256 = "TLS_CHACHA20_POLY1305_SHA256",
        EcdheEcdsaWithAes128CbcSha = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        EcdheEcdsaWithAes256CbcSha = "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        EcdheRsaWithAes128CbcSha = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        EcdheRsaWithAes256CbcSha = "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        EcdheEcdsaWithAes128GcmSha256 = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        EcdheEcdsaWithAes256GcmSha384 = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        EcdheRsaWithAes128GcmSha256 = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        EcdheRsaWithAes256GcmSha384 = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        EcdheRsaWithChacha20Poly1305Sha256 = "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        EcdheEcdsaWithChacha20Poly1305Sha256 = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        RsaWithRc4128Sha = "TLS_RSA_WITH_RC4_128_SHA",
        RsaWith3desEdeCbcSha = "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        RsaWithAes128CbcSha = "TLS_RSA_WITH_AES_128_CBC_SHA",
        RsaWithAes256CbcSha = "TLS_RSA_WITH_AES_256_CBC_SHA",
        RsaWithAes128CbcSha256 = "TLS_RSA_WITH_AES_128_CBC_SHA256",
        RsaWithAes128GcmSha256 = "TLS_RSA_WITH_AES_128_GCM_SHA256",
        RsaWithAes256GcmSha384 = "TLS_RSA_WITH_AES_256_GCM_SHA384",
        EcdheEcdsaWithRc4128Sha = "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        EcdheRsaWithRc4128Sha = "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        EcdheRsaWith3desEdeCbcSha = "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        EcdheEcdsaWithAes128CbcSha256 = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        EcdheRsaWithAes128CbcSha256 = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    }
    // Go's older names of two suites, still accepted.
    aliases {
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => EcdheRsaWithChacha20Poly1305Sha256,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => EcdheEcdsaWithChacha20Poly1305Sha256,
    }
}

named_enum! {
    /// `http.tls.clientauth` (portcullis's own): whether clients must present
    /// a certificate.
    pub enum ClientAuthMode ("client certificate mode", ignore_case = true) {
        /// No client certificate is asked for.
        None = "none",
        /// A client certificate is asked for and verified when one is sent.
        Optional = "optional",
        /// The handshake fails without a client certificate signed by a client CA.
        Required = "required",
    }
    aliases {}
}

named_enum! {
    /// `http.tls.clientidentity` (portcullis's own): which name of a verified
    /// client certificate identifies the caller.
    pub enum ClientIdentityMode ("client identity mode", ignore_case = true) {
        None = "none",
        Cn = "cn",
        SanDns = "san-dns",
        SanEmail = "san-email",
        SanUri = "san-uri",
    }
    aliases {}
}

named_enum! {
    /// JWS signature algorithms (RFC 7518), as `auth.token.signingalgorithms`
    /// and `auth.tokenserver.algorithm` name them.
    pub enum SigningAlgorithm ("signing algorithm", ignore_case = false) {
        EdDsa = "EdDSA",
        Hs256 = "HS256",
        Hs384 = "HS384",
        Hs512 = "HS512",
        Rs256 = "RS256",
        Rs384 = "RS384",
        Rs512 = "RS512",
        Es256 = "ES256",
        Es384 = "ES384",
        Es512 = "ES512",
        Ps256 = "PS256",
        Ps384 = "PS384",
        Ps512 = "PS512",
    }
    aliases {}
}

impl SigningAlgorithm {
    /// The names of the algorithms portcullis signs and verifies with (the
    /// values of `auth.tokenserver.algorithm`).
    pub const PORTCULLIS_NAMES: &'static [&'static str] = &["ES256", "RS256", "EdDSA"];

    /// A name in any case (`rs256` is `RS256`), as command-line flags take it.
    #[must_use]
    pub fn from_name_ignore_case(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
    }
}

impl Default for SigningAlgorithm {
    /// ES256, what distribution's documentation uses.
    fn default() -> Self {
        Self::Es256
    }
}

/// A value written by name: one of the accepted names, or the text as it was
/// written, which `validate()` reports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Named<T> {
    Known(T),
    Unknown(String),
}

impl<T: Copy> Named<T> {
    /// The value, when the name is known.
    #[must_use]
    pub fn known(&self) -> Option<T> {
        match self {
            Self::Known(value) => Some(*value),
            Self::Unknown(_) => None,
        }
    }
}

impl<T: FromStr> From<&str> for Named<T> {
    fn from(name: &str) -> Self {
        name.parse()
            .map_or_else(|_| Self::Unknown(name.to_owned()), Self::Known)
    }
}

impl<T: fmt::Display> fmt::Display for Named<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Known(value) => value.fmt(f),
            Self::Unknown(name) => f.write_str(name),
        }
    }
}

impl<T: fmt::Display> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de, T: FromStr> Deserialize<'de> for Named<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(Self::from(name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in TlsVersion::ALL {
            assert_eq!(v.as_str().parse::<TlsVersion>(), Ok(*v));
        }
        for s in CipherSuite::ALL {
            assert_eq!(s.to_string().parse::<CipherSuite>(), Ok(*s));
        }
        for a in SigningAlgorithm::ALL {
            assert_eq!(a.as_str().parse::<SigningAlgorithm>(), Ok(*a));
        }
        assert_eq!(CipherSuite::names().count(), CipherSuite::ALL.len() + 2);
        assert_eq!(
            TlsVersion::names().collect::<Vec<_>>().join(", "),
            "tls1.0, tls1.1, tls1.2, tls1.3"
        );
    }

    #[test]
    fn exact_names_and_aliases() {
        assert!("TLS1.2".parse::<TlsVersion>().is_err());
        assert_eq!("Optional".parse(), Ok(ClientAuthMode::Optional));
        assert_eq!("SAN-DNS".parse(), Ok(ClientIdentityMode::SanDns));
        assert!("es256".parse::<SigningAlgorithm>().is_err());
        assert_eq!(
            SigningAlgorithm::from_name_ignore_case("es256"),
            Some(SigningAlgorithm::Es256)
        );
        assert_eq!(
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".parse::<CipherSuite>(),
            Ok(CipherSuite::EcdheRsaWithChacha20Poly1305Sha256)
        );
        let e = "TLS_NOPE".parse::<CipherSuite>().unwrap_err();
        assert_eq!(e.to_string(), "unknown cipher suite `TLS_NOPE`");
        for name in SigningAlgorithm::PORTCULLIS_NAMES {
            assert!(name.parse::<SigningAlgorithm>().is_ok(), "{name}");
        }
    }

    #[test]
    fn named_keeps_unknown_text() {
        let n: Named<TlsVersion> = "tls1.4".into();
        assert_eq!(n, Named::Unknown("tls1.4".to_owned()));
        assert_eq!(n.known(), None);
        assert_eq!(n.to_string(), "tls1.4");
        let n: Named<TlsVersion> = "tls1.3".into();
        assert_eq!(n.known(), Some(TlsVersion::Tls13));
        let json = serde_json::to_string(&vec![n]).unwrap();
        assert_eq!(json, r#"["tls1.3"]"#);
        let back: Vec<Named<TlsVersion>> = serde_json::from_str(r#"["tls1.3", "x"]"#).unwrap();
        assert_eq!(back[1], Named::Unknown("x".to_owned()));
    }
}
