//! Key IDs: the libtrust format that distribution 2.8 uses, and RFC 7638 JWK
//! thumbprints (plus distribution 3.x's variant of them).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// The libtrust key ID of a public key, given its DER `SubjectPublicKeyInfo`.
///
/// SHA-256 of the DER, first 30 bytes (240 bits), base32 (RFC 4648, no
/// padding), in 12 groups of 4 characters joined by `:`, for example
/// `SVNG:A2VR:TQJG:H626:HBKH:6WBU:GFBH:3YNI:425G:MDXK:ULXZ:CENN`.
///
/// distribution 2.8 looks up a token's `kid` among the `rootcertbundle`
/// certificates by this ID. Go computes it over a re-encoded SPKI, so pass a
/// canonical encoding (which is what [`super::SigningKey::kid`] does).
#[must_use]
pub fn libtrust_kid(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let encoded = data_encoding::BASE32_NOPAD.encode(&digest[..30]);
    // 240 bits encode to exactly 48 characters: 12 groups of 4.
    let groups: Vec<&str> = encoded
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    groups.join(":")
}

/// RFC 7638 thumbprint of a JWK given its required members as canonical JSON
/// (members in lexicographic order, no whitespace): base64url(SHA-256).
pub(crate) fn thumbprint_of_canonical_json(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
}

/// The RFC 7638 thumbprint (SHA-256, base64url) of a key's public JWK.
///
/// This is the `kid` portcullis gives a JWKS key that has none.
#[must_use]
pub fn jwk_thumbprint(key: &super::VerifyKey) -> String {
    key.public().thumbprint()
}

/// The x and y coordinates of the P-256 base point, which distribution 3.x
/// hashes instead of the key's own coordinates when it computes the
/// "thumbprint" of an EC key in `rootcertbundle` (`params.Gx`, `params.Gy`).
pub(crate) const P256_GX: [u8; 32] = [
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
];
pub(crate) const P256_GY: [u8; 32] = [
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
];
