//! One direction's TLS 1.3 traffic protection, taken over from a rustls session once its
//! handshake is done: the AEAD key, the IV and the record sequence number (RFC 8446
//! section 5.3), and the application traffic secret they came from, which a key update
//! turns into the next one (section 7.2).

use aws_lc_rs::error::Unspecified;
use aws_lc_rs::hkdf::KeyType;
use aws_lc_rs::{aead, hkdf};
use rustls::ConnectionTrafficSecrets;
use zeroize::Zeroizing;

/// The length of a TLS 1.3 record's nonce, and of every suite's IV (RFC 8446 section 5.3).
const IV_LEN: usize = 12;

/// The length of every TLS 1.3 suite's authentication tag (RFC 8446 section 5.2).
pub(super) const TAG_LEN: usize = 16;

/// One direction's keys.
pub(super) struct TrafficKeys {
    key: aead::LessSafeKey,
    iv: [u8; IV_LEN],
    /// The sequence number of the next record (RFC 8446 section 5.3).
    seq: u64,
    /// The suite's AEAD and the hash of its key schedule.
    suite: Suite,
    /// The application traffic secret the key and IV were derived from, when known:
    /// without it the keys cannot be updated.
    secret: Option<Secret>,
}

/// A TLS 1.3 cipher suite's AEAD and hash (RFC 8446 appendix B.4).
#[derive(Clone, Copy)]
struct Suite {
    aead: &'static aead::Algorithm,
    hkdf: hkdf::Algorithm,
}

/// A traffic secret's bytes, wiped when dropped.
pub(super) struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// A copy of `bytes`.
    pub(super) fn new(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl TrafficKeys {
    /// The keys rustls extracted for one direction, with sequence number `seq`. `logged` is
    /// that direction's application traffic secret as the session's key log recorded it:
    /// kept for key updates only if it derives exactly the extracted key and IV (anything
    /// else, such as another session's secret under the same client random, is dropped).
    /// `None` for an AEAD that TLS 1.3 does not have.
    pub(super) fn new(
        seq: u64,
        secrets: ConnectionTrafficSecrets,
        logged: Option<Secret>,
    ) -> Option<Self> {
        use ConnectionTrafficSecrets::{Aes128Gcm, Aes256Gcm, Chacha20Poly1305};
        let (aead, hkdf, key, iv) = match &secrets {
            Aes128Gcm { key, iv } => (&aead::AES_128_GCM, hkdf::HKDF_SHA256, key, iv),
            Aes256Gcm { key, iv } => (&aead::AES_256_GCM, hkdf::HKDF_SHA384, key, iv),
            Chacha20Poly1305 { key, iv } => (&aead::CHACHA20_POLY1305, hkdf::HKDF_SHA256, key, iv),
            _ => return None,
        };
        let suite = Suite { aead, hkdf };
        let (key, iv) = (key.as_ref(), iv.as_ref());
        let iv: [u8; IV_LEN] = iv.try_into().ok()?;
        let secret = logged.filter(|secret| {
            let (derived_key, derived_iv) = derive(suite, &secret.0);
            derived_key.as_slice() == key && derived_iv == iv
        });
        Some(Self {
            key: less_safe_key(suite, key)?,
            iv,
            seq,
            suite,
            secret,
        })
    }

    /// The nonce of the next record: the IV with the sequence number XORed into its last
    /// eight bytes (RFC 8446 section 5.3).
    fn nonce(&self) -> aead::Nonce {
        let mut nonce = self.iv;
        for (byte, seq) in nonce[IV_LEN - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *byte ^= seq;
        }
        aead::Nonce::assume_unique_for_key(nonce)
    }

    /// Encrypts `in_out` (a record's inner plaintext) in place as the next record, whose
    /// 5-byte header is `header`, and returns its tag. An error only if the sequence number
    /// would wrap, which RFC 8446 section 5.3 forbids.
    pub(super) fn seal(
        &mut self,
        header: [u8; 5],
        in_out: &mut [u8],
    ) -> Result<aead::Tag, Unspecified> {
        let next = self.seq.checked_add(1).ok_or(Unspecified)?;
        let tag =
            self.key
                .seal_in_place_separate_tag(self.nonce(), aead::Aad::from(header), in_out)?;
        self.seq = next;
        Ok(tag)
    }

    /// Decrypts the next record (its encrypted part, tag included) in place; the inner
    /// plaintext's length, or an error if the record does not authenticate.
    pub(super) fn open(
        &mut self,
        header: [u8; 5],
        in_out: &mut [u8],
    ) -> Result<usize, Unspecified> {
        let next = self.seq.checked_add(1).ok_or(Unspecified)?;
        let plain = self
            .key
            .open_in_place(self.nonce(), aead::Aad::from(header), in_out)?;
        self.seq = next;
        Ok(plain.len())
    }

    /// Records sealed or opened with these keys so far.
    pub(super) fn records(&self) -> u64 {
        self.seq
    }

    /// Whether [`TrafficKeys::update`] can move the keys on (the secret is known).
    pub(super) fn can_update(&self) -> bool {
        self.secret.is_some()
    }

    /// Moves to the next generation of keys (RFC 8446 section 7.2:
    /// `application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "",
    /// Hash.length)`), the sequence number back at 0; false if the secret is not known.
    pub(super) fn update(&mut self) -> bool {
        let Some(secret) = &self.secret else {
            return false;
        };
        let hash_len = KeyType::len(&self.suite.hkdf);
        let next = Secret(expand_label(
            self.suite.hkdf,
            &secret.0,
            b"traffic upd",
            hash_len,
        ));
        let (key, iv) = derive(self.suite, &next.0);
        let Some(key) = less_safe_key(self.suite, &key) else {
            return false;
        };
        self.key = key;
        self.iv = iv;
        self.seq = 0;
        self.secret = Some(next);
        true
    }
}

#[cfg(test)]
impl TrafficKeys {
    /// The same keys again, derived from their secret (tests only: the AEAD key has no
    /// copy of its own).
    pub(super) fn clone_for_test(&self) -> Self {
        let secret = self
            .secret
            .as_ref()
            .expect("a test session's keys have their secret");
        let (key, iv) = derive(self.suite, &secret.0);
        Self {
            key: less_safe_key(self.suite, &key).expect("a key of the suite's length"),
            iv,
            seq: self.seq,
            suite: self.suite,
            secret: Some(Secret::new(&secret.0)),
        }
    }
}

/// The AEAD key for `suite` from its bytes.
fn less_safe_key(suite: Suite, key: &[u8]) -> Option<aead::LessSafeKey> {
    aead::UnboundKey::new(suite.aead, key)
        .ok()
        .map(aead::LessSafeKey::new)
}

/// The traffic key and IV of a traffic secret (RFC 8446 section 7.3).
fn derive(suite: Suite, secret: &[u8]) -> (Zeroizing<Vec<u8>>, [u8; IV_LEN]) {
    let key = expand_label(suite.hkdf, secret, b"key", suite.aead.key_len());
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&expand_label(suite.hkdf, secret, b"iv", IV_LEN));
    (key, iv)
}

/// `HKDF-Expand-Label(secret, label, "", len)` (RFC 8446 section 7.1).
fn expand_label(
    algorithm: hkdf::Algorithm,
    secret: &[u8],
    label: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    /// An output length for `Prk::expand`.
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let length = (len as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    // The empty context: its length byte.
    let info: [&[u8]; 5] = [&length, &label_len, b"tls13 ", label, &[0]];
    let mut out = Zeroizing::new(vec![0u8; len]);
    let prk = hkdf::Prk::new_less_safe(algorithm, secret);
    // The lengths asked for here (at most 48 bytes) are far below HKDF's limit.
    if let Ok(okm) = prk.expand(&info, Len(len)) {
        let _ = okm.fill(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8448 section 3 (a simple 1-RTT handshake): the server's application traffic
    /// secret and the key and IV it gives.
    #[test]
    fn keys_derive_as_in_rfc_8448() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let secret = hex("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643");
        let suite = Suite {
            aead: &aead::AES_128_GCM,
            hkdf: hkdf::HKDF_SHA256,
        };
        let (key, iv) = derive(suite, &secret);
        assert_eq!(*key, hex("9f02283b6c9c07efc26bb9f2ac92e356"));
        assert_eq!(iv.to_vec(), hex("cf782b88dd83549aadf1e984"));
    }
}
