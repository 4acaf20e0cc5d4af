//! Client-side encryption for Cloudreve's encrypting storage policies
//! (4.10+, docs/UPSTREAM.md §5.7).
//!
//! A policy with `encryption` on does not encrypt what a client uploads
//! itself: the upload session hands a client that listed a cipher a fresh
//! key and IV (`encrypt_metadata`), and the client sends ciphertext.
//! Cloudreve keeps the key (wrapped by its master key) and decrypts on
//! download. The only cipher is AES-256 in counter mode with the IV as a
//! 128-bit big-endian counter, so any byte offset can be encrypted on its
//! own: each chunk (and each retry of it) starts the keystream at its offset.

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

use super::error::{Error, Result};
use super::types::EncryptMetadata;

/// The cipher this client offers in `encryption_supported`.
pub(super) const AES_256_CTR: &str = "aes-256-ctr";

/// A keystream positioned at some byte offset of the file.
pub(super) struct Keystream(ctr::Ctr128BE<Aes256>);

impl Keystream {
    /// Encrypts the next bytes of the file (a copy: `b` may be kept for a
    /// retry as plaintext).
    pub(super) fn apply(&mut self, b: &Bytes) -> Bytes {
        let mut out = BytesMut::from(&b[..]);
        self.0.apply_keystream(&mut out);
        out.freeze()
    }
}

/// The key and IV an upload session handed out.
#[derive(Clone)]
pub(super) struct ContentCipher {
    key: [u8; 32],
    iv: [u8; 16],
}

impl std::fmt::Debug for ContentCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentCipher(aes-256-ctr, key hidden)")
    }
}

impl ContentCipher {
    /// Reads a session's `encrypt_metadata`; an unknown cipher or a key or
    /// IV of the wrong size is an error (the upload must not go out in
    /// clear to a policy that encrypts).
    pub(super) fn from_metadata(m: &EncryptMetadata) -> Result<Self> {
        if m.algorithm != AES_256_CTR {
            return Err(Error::decode(
                "upload session encrypt_metadata",
                format!("cipher {:?} is not supported", m.algorithm),
            ));
        }
        let decode = |field: &str, v: &str| {
            STANDARD
                .decode(v)
                .map_err(|e| Error::decode(format!("upload session encrypt_metadata.{field}"), e))
        };
        let key = decode("key_plain_text", &m.key_plain_text)?;
        let iv = decode("iv", &m.iv)?;
        let (Ok(key), Ok(iv)) = (<[u8; 32]>::try_from(key), <[u8; 16]>::try_from(iv)) else {
            return Err(Error::decode(
                "upload session encrypt_metadata",
                "key must be 32 bytes and iv 16",
            ));
        };
        Ok(Self { key, iv })
    }

    /// The keystream starting at byte `offset` of the file.
    pub(super) fn at(&self, offset: u64) -> Keystream {
        let mut c = ctr::Ctr128BE::<Aes256>::new(&self.key.into(), &self.iv.into());
        c.seek(offset);
        Keystream(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> ContentCipher {
        ContentCipher::from_metadata(&EncryptMetadata {
            algorithm: AES_256_CTR.into(),
            key_plain_text: STANDARD.encode([7u8; 32]),
            iv: STANDARD.encode([0xffu8; 16]),
        })
        .expect("metadata")
    }

    #[test]
    fn a_chunk_encrypted_at_its_offset_matches_the_whole_file() {
        let c = cipher();
        let plain: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let whole = c.at(0).apply(&Bytes::from(plain.clone()));
        assert_ne!(&whole[..], &plain[..]);
        // Split at an odd offset (not a block boundary); the IV of all ones
        // makes the counter wrap at once, as a big-endian 128-bit counter.
        let mut ks = c.at(333);
        let a = ks.apply(&Bytes::copy_from_slice(&plain[333..500]));
        let b = ks.apply(&Bytes::copy_from_slice(&plain[500..]));
        assert_eq!(&whole[333..500], &a[..]);
        assert_eq!(&whole[500..], &b[..]);
        // Counter mode: encrypting again decrypts.
        assert_eq!(&c.at(0).apply(&whole)[..], &plain[..]);
    }

    #[test]
    fn unknown_ciphers_and_bad_keys_are_refused() {
        let bad = |algorithm: &str, key: &[u8], iv: &[u8]| {
            ContentCipher::from_metadata(&EncryptMetadata {
                algorithm: algorithm.into(),
                key_plain_text: STANDARD.encode(key),
                iv: STANDARD.encode(iv),
            })
            .is_err()
        };
        assert!(bad("aes-128-gcm", &[0; 32], &[0; 16]));
        assert!(bad(AES_256_CTR, &[0; 16], &[0; 16]));
        assert!(bad(AES_256_CTR, &[0; 32], &[0; 12]));
    }
}
