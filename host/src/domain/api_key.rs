//! API keys: random bearer tokens, shown once, stored only as a SHA-256 hash.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every token starts with this, so a leaked one is easy to spot in code or logs.
const TOKEN_PREFIX: &str = "mh_";

/// A freshly generated token; the only time the secret exists in clear.
pub struct NewToken {
    pub secret: String,
    pub hash: String,
    /// The first characters, stored to help people tell their keys apart.
    pub hint: String,
}

/// Makes a token with 256 bits of randomness.
pub fn generate() -> NewToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let body: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret = format!("{TOKEN_PREFIX}{body}");
    NewToken {
        hash: hash(&secret),
        hint: secret[..TOKEN_PREFIX.len() + 6].to_owned(),
        secret,
    }
}

/// The stored form of a token. A fast hash is right here: tokens are long random strings, not
/// passwords, so there is nothing to guess.
pub fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a presented string could be one of our tokens at all.
pub fn looks_like_token(candidate: &str) -> bool {
    candidate.len() == TOKEN_PREFIX.len() + 64
        && candidate.starts_with(TOKEN_PREFIX)
        && candidate[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_unique_and_recognised() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(looks_like_token(&a.secret));
        assert_eq!(hash(&a.secret), a.hash);
        assert!(a.secret.starts_with(&a.hint));
        assert!(!looks_like_token("mh_short"));
    }
}
