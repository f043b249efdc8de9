//! Self-validating connection tokens.
//!
//! The transport protocol (`TransportProtocols.md`, "Version 1") hands the client a secret
//! `connectionToken` that every later request carries as `?id=`. ASP.NET Core makes it a
//! random string that only the server which issued it can look up, which is why its scale-out
//! needs sticky sessions. Here the token is signed instead: it carries the public connection
//! id, the connection's options and an expiry, sealed with an HMAC-SHA-256 (RFC 2104) under a
//! key. Any server holding the key can tell a token it issued, or a sibling issued, from a
//! forged one without a lookup (issue #17, "no sticky sessions").
//!
//! Layout before base64url (RFC 4648 section 5, no padding): format byte, flags byte, the
//! 16-byte connection id, the expiry as big-endian Unix seconds (8 bytes), then the first 16
//! bytes of the MAC over everything before it.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;

/// The bytes of a connection id: 128 random bits, like ASP.NET Core's ids.
pub const CONNECTION_ID_BYTES: usize = 16;
const FORMAT: u8 = 1;
const MAC_BYTES: usize = 16;
const BODY_BYTES: usize = 2 + CONNECTION_ID_BYTES + 8;
const TOKEN_BYTES: usize = BODY_BYTES + MAC_BYTES;
/// The length of an encoded token; anything else is refused before decoding.
const ENCODED_LEN: usize = (TOKEN_BYTES * 4).div_ceil(3);
const FLAG_STATEFUL: u8 = 1;
const FLAG_VERSION_0: u8 = 2;

/// The key that signs connection tokens. Random per process by default; give every server of
/// a fleet the same key ([`TokenKey::from_secret`]) so each accepts the others' tokens.
#[derive(Clone)]
pub struct TokenKey(hmac::Key);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl Default for TokenKey {
    fn default() -> Self {
        Self::random()
    }
}

impl TokenKey {
    /// A fresh random key (256 bits from the OS generator).
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Self::from_secret(&secret)
    }

    /// A key from shared secret bytes: servers with the same secret accept each other's
    /// tokens. Use at least 32 random bytes.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }
}

/// What a valid token says about its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The public connection id (`connectionId`), base64url.
    pub connection_id: String,
    /// Whether the client asked for stateful reconnect and the server allowed it.
    pub stateful_reconnect: bool,
    /// The negotiate version the token was issued under: with 0 the client knows no other
    /// id than the token itself, so that is the connection's public id.
    pub negotiate_version: u32,
    /// When the token stops being able to start a connection on a server that does not hold it.
    pub expires: SystemTime,
}

impl TokenClaims {
    /// The id other clients know the connection by: the token itself under negotiate
    /// version 0, else the id it carries.
    pub fn public_id(&self, token: &str) -> String {
        if self.negotiate_version == 0 {
            token.to_owned()
        } else {
            self.connection_id.clone()
        }
    }
}

/// Issues a token for a new connection under `negotiate_version` (0 or 1) with a new random
/// 16-byte connection id: the token, and the claims it carries.
pub fn issue(
    key: &TokenKey,
    negotiate_version: u32,
    stateful_reconnect: bool,
    lifetime: Duration,
) -> (String, TokenClaims) {
    let mut id = [0u8; CONNECTION_ID_BYTES];
    rand::rng().fill_bytes(&mut id);
    let expires = SystemTime::now()
        .checked_add(lifetime)
        .unwrap_or(UNIX_EPOCH + Duration::from_secs(u32::MAX.into()));
    let seconds = expires
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let mut body = [0u8; TOKEN_BYTES];
    body[0] = FORMAT;
    body[1] = if stateful_reconnect { FLAG_STATEFUL } else { 0 }
        | if negotiate_version == 0 {
            FLAG_VERSION_0
        } else {
            0
        };
    body[2..2 + CONNECTION_ID_BYTES].copy_from_slice(&id);
    body[2 + CONNECTION_ID_BYTES..BODY_BYTES].copy_from_slice(&seconds.to_be_bytes());
    let tag = hmac::sign(&key.0, &body[..BODY_BYTES]);
    body[BODY_BYTES..].copy_from_slice(&tag.as_ref()[..MAC_BYTES]);
    let claims = TokenClaims {
        connection_id: URL_SAFE_NO_PAD.encode(id),
        stateful_reconnect,
        negotiate_version: u32::from(negotiate_version != 0),
        expires: UNIX_EPOCH + Duration::from_secs(seconds),
    };
    (URL_SAFE_NO_PAD.encode(body), claims)
}

/// Checks a token's MAC and returns what it says, or `None` for anything this key did not
/// sign (a forged, truncated or altered token). Expiry is reported, not enforced: the caller
/// decides where it matters.
pub fn verify(key: &TokenKey, token: &str) -> Option<TokenClaims> {
    if token.len() != ENCODED_LEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() != TOKEN_BYTES || bytes[0] != FORMAT {
        return None;
    }
    let tag = hmac::sign(&key.0, &bytes[..BODY_BYTES]);
    // ring's verify compares in constant time; it takes the whole tag, so compare the
    // truncated one through a constant-time fold instead.
    let same = tag.as_ref()[..MAC_BYTES]
        .iter()
        .zip(&bytes[BODY_BYTES..])
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if same != 0 {
        return None;
    }
    let mut seconds = [0u8; 8];
    seconds.copy_from_slice(&bytes[2 + CONNECTION_ID_BYTES..BODY_BYTES]);
    Some(TokenClaims {
        connection_id: URL_SAFE_NO_PAD.encode(&bytes[2..2 + CONNECTION_ID_BYTES]),
        stateful_reconnect: bytes[1] & FLAG_STATEFUL != 0,
        negotiate_version: u32::from(bytes[1] & FLAG_VERSION_0 == 0),
        expires: UNIX_EPOCH + Duration::from_secs(u64::from_be_bytes(seconds)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_under_its_key_only() {
        let key = TokenKey::random();
        let (token, claims) = issue(&key, 1, true, Duration::from_secs(60));
        assert_eq!(verify(&key, &token), Some(claims.clone()));
        assert!(claims.stateful_reconnect);
        assert_eq!(claims.public_id(&token), claims.connection_id);
        let (old, claims) = issue(&key, 0, false, Duration::from_secs(60));
        assert_eq!(verify(&key, &old), Some(claims.clone()));
        assert_eq!(
            claims.public_id(&old),
            old,
            "version 0 knows only the token"
        );
        assert_eq!(claims.connection_id.len(), 22);
        assert_eq!(verify(&TokenKey::random(), &token), None);
    }

    #[test]
    fn shared_secrets_accept_each_others_tokens() {
        let a = TokenKey::from_secret(b"a shared secret of the whole fleet");
        let b = TokenKey::from_secret(b"a shared secret of the whole fleet");
        let (token, claims) = issue(&a, 1, false, Duration::from_secs(60));
        assert_eq!(verify(&b, &token), Some(claims));
    }

    #[test]
    fn altered_or_malformed_tokens_are_refused() {
        let key = TokenKey::random();
        let (token, _) = issue(&key, 1, false, Duration::from_secs(60));
        let mut bytes = token.clone().into_bytes();
        bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert_eq!(verify(&key, &altered), None);
        assert_eq!(verify(&key, ""), None);
        assert_eq!(verify(&key, &token[1..]), None);
        assert_eq!(verify(&key, &"!".repeat(token.len())), None);
    }
}
