//! PKCS#11 tokens: list tokens and certificates, open a card key as a SigningKey.
