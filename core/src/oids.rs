//! Every object identifier imza uses, in one place (import from here, never repeat a literal).

use der::asn1::ObjectIdentifier as Oid;

// Algorithms (RFC 5480, RFC 5758, RFC 4055, RFC 8017).
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
pub const SECP521R1: Oid = Oid::new_unwrap("1.3.132.0.35");
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
pub const RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
/// id-mgf1 (RFC 8017 appendix B.2.1), the mask generation function of RSASSA-PSS.
pub const MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

// Name attributes (X.520, RFC 5280 appendix A).
pub const AT_COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
pub const AT_SURNAME: Oid = Oid::new_unwrap("2.5.4.4");
pub const AT_SERIAL_NUMBER: Oid = Oid::new_unwrap("2.5.4.5");
pub const AT_COUNTRY: Oid = Oid::new_unwrap("2.5.4.6");
pub const AT_LOCALITY: Oid = Oid::new_unwrap("2.5.4.7");
pub const AT_STATE: Oid = Oid::new_unwrap("2.5.4.8");
pub const AT_STREET: Oid = Oid::new_unwrap("2.5.4.9");
pub const AT_ORGANIZATION: Oid = Oid::new_unwrap("2.5.4.10");
pub const AT_ORGANIZATIONAL_UNIT: Oid = Oid::new_unwrap("2.5.4.11");
pub const AT_TITLE: Oid = Oid::new_unwrap("2.5.4.12");
pub const AT_GIVEN_NAME: Oid = Oid::new_unwrap("2.5.4.42");
pub const AT_PSEUDONYM: Oid = Oid::new_unwrap("2.5.4.65");
pub const AT_ORGANIZATION_IDENTIFIER: Oid = Oid::new_unwrap("2.5.4.97");
pub const AT_DOMAIN_COMPONENT: Oid = Oid::new_unwrap("0.9.2342.19200300.100.1.25");
pub const AT_EMAIL_ADDRESS: Oid = Oid::new_unwrap("1.2.840.113549.1.9.1");

// Certificate extensions (RFC 5280 §4.2).
pub const EXT_SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
pub const EXT_SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
pub const EXT_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
pub const EXT_CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
pub const EXT_CRL_REASON: Oid = Oid::new_unwrap("2.5.29.21");
pub const EXT_INVALIDITY_DATE: Oid = Oid::new_unwrap("2.5.29.24");
pub const EXT_CRL_DISTRIBUTION_POINTS: Oid = Oid::new_unwrap("2.5.29.31");
pub const EXT_CERTIFICATE_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
pub const EXT_AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");
pub const EXT_EXTENDED_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
pub const EXT_AUTHORITY_INFO_ACCESS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");
pub const EXT_QC_STATEMENTS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.3");
pub const EXT_OCSP_NOCHECK: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.5");
pub const EXT_EXTENSION_REQUEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.14");

// Access methods (RFC 5280 §4.2.2.1).
pub const AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
pub const AD_CA_ISSUERS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.2");

// Extended key usages (RFC 5280 §4.2.1.12).
pub const KP_SERVER_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.1");
pub const KP_CLIENT_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.2");
pub const KP_CODE_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.3");
pub const KP_EMAIL_PROTECTION: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.4");
pub const KP_TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");
pub const KP_OCSP_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.9");

// Certificate policies.
pub const ANY_POLICY: Oid = Oid::new_unwrap("2.5.29.32.0");
/// ETSI EN 319 411-2: QCP-n-qscd, qualified certificate for a natural person on a QSCD.
pub const ETSI_QCP_N_QSCD: Oid = Oid::new_unwrap("0.4.0.194112.1.2");
/// ETSI EN 319 411-2: QCP-l, qualified certificate for a legal person.
pub const ETSI_QCP_L: Oid = Oid::new_unwrap("0.4.0.194112.1.1");
/// ETSI EN 319 411-1: NCP, normalized certificate policy.
pub const ETSI_NCP: Oid = Oid::new_unwrap("0.4.0.2042.1.1");
/// ETSI EN 319 411-1: NCP+, normalized policy requiring a secure device.
pub const ETSI_NCP_PLUS: Oid = Oid::new_unwrap("0.4.0.2042.1.2");
/// ETSI EN 319 411-1: OVCP, organisation-validated website certificate.
pub const ETSI_OVCP: Oid = Oid::new_unwrap("0.4.0.2042.1.7");
/// CA/Browser Forum organisation-validated TLS certificate.
pub const CABF_OV: Oid = Oid::new_unwrap("2.23.140.1.2.2");

// QCStatements (ETSI EN 319 412-5 §4, RFC 3739).
pub const QCS_PKIX_SEMANTICS_V2: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.11.2");
pub const QCS_ETSI_COMPLIANCE: Oid = Oid::new_unwrap("0.4.0.1862.1.1");
pub const QCS_ETSI_RETENTION_PERIOD: Oid = Oid::new_unwrap("0.4.0.1862.1.3");
pub const QCS_ETSI_SSCD: Oid = Oid::new_unwrap("0.4.0.1862.1.4");
pub const QCS_ETSI_PDS: Oid = Oid::new_unwrap("0.4.0.1862.1.5");
pub const QCS_ETSI_TYPE: Oid = Oid::new_unwrap("0.4.0.1862.1.6");
pub const QCS_ETSI_TYPE_ESIGN: Oid = Oid::new_unwrap("0.4.0.1862.1.6.1");
pub const QCS_ETSI_TYPE_ESEAL: Oid = Oid::new_unwrap("0.4.0.1862.1.6.2");
pub const QCS_ETSI_TYPE_WEB: Oid = Oid::new_unwrap("0.4.0.1862.1.6.3");
pub const QCS_ETSI_CC_LEGISLATION: Oid = Oid::new_unwrap("0.4.0.1862.1.7");
/// ETSI EN 319 412-1 §5.1.3: semantics identifier for natural-person serialNumber (`PNOxx-...`).
pub const ETSI_SEMANTICS_NATURAL: Oid = Oid::new_unwrap("0.4.0.194121.1.1");
/// ETSI EN 319 412-1 §5.1.4: semantics identifier for legal-person organizationIdentifier.
pub const ETSI_SEMANTICS_LEGAL: Oid = Oid::new_unwrap("0.4.0.194121.1.2");

// CMS content types and signed attributes (RFC 5652 §4, §11; RFC 3161 §2.4.2; RFC 5035 §5.4).
pub const CT_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
pub const CT_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
/// id-ct-TSTInfo (RFC 3161 §2.4.2): the eContentType of a time-stamp token.
pub const CT_TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
pub const ATTR_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
pub const ATTR_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
pub const ATTR_SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
/// id-aa-signingCertificate (RFC 2634 §5.4), ESSCertID with SHA-1.
pub const ATTR_SIGNING_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.12");
/// id-aa-signingCertificateV2 (RFC 5035 §3), ESSCertIDv2.
pub const ATTR_SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// id-aa-timeStampToken (RFC 3161 appendix A): a token as an unsigned attribute of a signature.
pub const ATTR_TIME_STAMP_TOKEN: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.14");
/// SHA-1, only to check ESSCertID (RFC 2634) values in tokens others made; never to sign.
pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");

// OCSP (RFC 6960 §4.2.1, §4.4; RFC 9654 §2.1). `SHA1` above also names SHA-1 CertIDs (§4.1.1).
/// id-pkix-ocsp-basic: the one response type imza produces and accepts.
pub const OCSP_BASIC: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nonce: binds a response to its request (RFC 9654).
pub const OCSP_NONCE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-response: the AcceptableResponses request extension (RFC 6960 §4.4.3).
pub const OCSP_ACCEPTABLE_RESPONSES: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.4");
/// sha1WithRSAEncryption: only to check legacy responses and certificates others signed; never to sign.
pub const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
/// ETSI EN 319 421 §5.2: best-practices time-stamp policy (BTSP).
pub const ETSI_BEST_PRACTICES_TS_POLICY: Oid = Oid::new_unwrap("0.4.0.2023.1.1");

// Path validation (RFC 5280 §4.2.1) extensions not written by imza's CA but read by the validator.
pub const EXT_SUBJECT_DIRECTORY_ATTRIBUTES: Oid = Oid::new_unwrap("2.5.29.9");
pub const EXT_ISSUER_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.18");
pub const EXT_DELTA_CRL_INDICATOR: Oid = Oid::new_unwrap("2.5.29.27");
pub const EXT_ISSUING_DISTRIBUTION_POINT: Oid = Oid::new_unwrap("2.5.29.28");
pub const EXT_CERTIFICATE_ISSUER: Oid = Oid::new_unwrap("2.5.29.29");
pub const EXT_NAME_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.30");
pub const EXT_POLICY_MAPPINGS: Oid = Oid::new_unwrap("2.5.29.33");
pub const EXT_POLICY_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.36");
pub const EXT_FRESHEST_CRL: Oid = Oid::new_unwrap("2.5.29.46");
pub const EXT_INHIBIT_ANY_POLICY: Oid = Oid::new_unwrap("2.5.29.54");
/// anyExtendedKeyUsage (RFC 5280 §4.2.1.12).
pub const KP_ANY: Oid = Oid::new_unwrap("2.5.29.37.0");
/// DSA (RFC 3279 §2.3.2) and dsa-with-sha1 / dsa-with-sha256: read only, to check old paths.
pub const DSA: Oid = Oid::new_unwrap("1.2.840.10040.4.1");
pub const DSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10040.4.3");
pub const DSA_WITH_SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.3.2");

// OCSP client (RFC 6960 Appendix B): id-ri-ocsp-response, for OCSP responses carried in
// CMS RevocationInfoChoice `other` (RFC 5940 §4.3).
pub const RI_OCSP_RESPONSE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.16.2");

// CAdES (ETSI EN 319 122-1) attributes.
/// id-aa-ets-archiveTimestampV3 (EN 319 122-1 §5.5.3).
pub const ATTR_ARCHIVE_TIME_STAMP_V3: Oid = Oid::new_unwrap("0.4.0.1733.2.4");
/// id-aa-ATSHashIndex-v3 (EN 319 122-1 §5.5.2).
pub const ATTR_ATS_HASH_INDEX_V3: Oid = Oid::new_unwrap("0.4.0.19122.1.5");
/// id-aa-ets-certValues (EN 319 122-1 §5.4.1).
pub const ATTR_CERT_VALUES: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.23");
/// id-aa-ets-revocationValues (EN 319 122-1 §5.4.2).
pub const ATTR_REVOCATION_VALUES: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.24");
/// id-aa-ets-sigPolicyId (EN 319 122-1 §5.2.9).
pub const ATTR_SIG_POLICY_ID: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.15");
/// id-aa-ets-contentTimestamp (EN 319 122-1 §5.2.8).
pub const ATTR_CONTENT_TIME_STAMP: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.20");
/// CMSAlgorithmProtection (RFC 6211).
pub const ATTR_CMS_ALGORITHM_PROTECTION: Oid = Oid::new_unwrap("1.2.840.113549.1.9.52");
