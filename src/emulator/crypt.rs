//! Encryption at rest for the emulated encrypting policy (Cloudreve 4.10+):
//! the key an upload session hands to a client that offers the cipher, the
//! server-side encryption of uploads nobody encrypted, and the decryption
//! of downloads. AES-256 in counter mode, the IV a big-endian 128-bit
//! counter, so any byte offset has its own keystream.

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The one cipher Cloudreve 4.18 knows.
pub(super) const CIPHER: &str = "aes-256-ctr";

/// A stored entity's key and IV.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct EntityKey {
    key: Vec<u8>,
    iv: Vec<u8>,
}

impl std::fmt::Debug for EntityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EntityKey(..)")
    }
}

/// A keystream positioned in an entity.
pub(super) struct Keystream(ctr::Ctr128BE<Aes256>);

impl Keystream {
    /// XORs the next bytes with the keystream (encrypts or decrypts).
    pub(super) fn apply(&mut self, b: &[u8]) -> Bytes {
        let mut out = BytesMut::from(b);
        self.0.apply_keystream(&mut out);
        out.freeze()
    }
}

impl EntityKey {
    /// A fresh random key and IV.
    pub(super) fn random() -> Self {
        let mut key = vec![0u8; 32];
        let mut iv = vec![0u8; 16];
        rand::thread_rng().fill_bytes(&mut key);
        rand::thread_rng().fill_bytes(&mut iv);
        Self { key, iv }
    }

    /// The keystream from byte `offset` of the entity.
    pub(super) fn at(&self, offset: u64) -> Keystream {
        let key: [u8; 32] = self.key.as_slice().try_into().unwrap_or([0; 32]);
        let iv: [u8; 16] = self.iv.as_slice().try_into().unwrap_or([0; 16]);
        let mut c = ctr::Ctr128BE::<Aes256>::new(&key.into(), &iv.into());
        c.seek(offset);
        Keystream(c)
    }

    /// The session's `encrypt_metadata` as Cloudreve writes it (Go `[]byte`
    /// fields in base64; the wrapped `key` is not sent).
    pub(super) fn session_json(&self) -> Value {
        json!({
            "algorithm": CIPHER,
            "key": null,
            "key_plain_text": STANDARD.encode(&self.key),
            "iv": STANDARD.encode(&self.iv),
        })
    }
}
