//! Which PKCS#11 module to load.
