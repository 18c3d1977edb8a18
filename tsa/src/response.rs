//! Reading a `TimeStampResp` and its token as a client (RFC 3161 §2.4.2): status, failure
//! bits, and the `TSTInfo` inside the CMS `SignedData`. Reading is not trusting: see
//! [`crate::verify_token`] for the signature, the certificate and the expectations.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use imza_core::alg::DigestAlgorithm;
use imza_core::cms::CmsSignedData;
use imza_core::oids;
use imza_http::client::MAX_ANSWER_BYTES;
use time::OffsetDateTime;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::Certificate;

use crate::imprint_algorithm;
use crate::serial::int_hex;
use crate::signed_data::TOKEN_LIMITS;
use crate::status::{FailureInfo, PkiStatus, TimeStampResp};
use crate::tst_info::TstInfo;
use crate::TsaError;

/// A decoded `TimeStampResp`.
#[derive(Clone, Debug)]
pub struct ParsedResponse {
    pub status: PkiStatus,
    /// The statusString texts (PKIFreeText), if any.
    pub status_text: Vec<String>,
    /// The bits set in failInfo, if any.
    pub failure_info: Vec<FailureInfo>,
    /// The token: present exactly when the status is granted or grantedWithMods.
    pub token: Option<ParsedToken>,
}

impl ParsedResponse {
    /// The token of a granted response, or `NotGranted` saying why there is none.
    pub fn into_token(self) -> Result<ParsedToken, TsaError> {
        match self.token {
            Some(token) if self.status.is_granted() => Ok(token),
            _ => Err(TsaError::NotGranted {
                status: self.status.to_string(),
                failure: self.failure_info.iter().map(|f| format!(", {f}")).collect(),
                text: self.status_text.iter().map(|t| format!(": {t}")).collect(),
            }),
        }
    }
}

/// Reads a DER `TimeStampResp` of at most [`MAX_ANSWER_BYTES`].
pub fn parse_response(der: &[u8]) -> Result<ParsedResponse, TsaError> {
    if der.len() > MAX_ANSWER_BYTES {
        return Err(TsaError::ResponseTooLarge {
            size: der.len(),
            limit: MAX_ANSWER_BYTES,
        });
    }
    let response =
        TimeStampResp::from_der(der).map_err(|e| TsaError::malformed("TimeStampResp", e))?;
    let status = response.status.status;
    let token = match response.time_stamp_token {
        Some(ref token) if status.is_granted() => Some(ParsedToken::from_content_info_der(
            token
                .to_der()
                .map_err(|e| TsaError::malformed("TimeStampToken", e))?,
        )?),
        Some(_) => {
            return Err(TsaError::malformed(
                "TimeStampResp",
                format!("status {status} must not carry a token (RFC 3161 §2.4.2)"),
            ))
        }
        None if status.is_granted() => {
            return Err(TsaError::malformed(
                "TimeStampResp",
                format!("status {status} without a token (RFC 3161 §2.4.2)"),
            ))
        }
        None => None,
    };
    Ok(ParsedResponse {
        status,
        status_text: response.status.status_string.unwrap_or_default(),
        failure_info: response
            .status
            .fail_info
            .as_ref()
            .map(FailureInfo::all_in)
            .unwrap_or_default(),
        token,
    })
}

/// A decoded time-stamp token: `ContentInfo` of `SignedData` of `TSTInfo`.
#[derive(Clone, Debug)]
pub struct ParsedToken {
    der: Vec<u8>,
    tst_info: TstInfo,
    pub(crate) signed_data: CmsSignedData,
    /// DER of every X.509 certificate in `SignedData.certificates`, in the order sent.
    certificates: Vec<Vec<u8>>,
}

impl ParsedToken {
    /// Reads a DER `TimeStampToken` on its own (as found, say, in a CAdES signature's
    /// id-aa-timeStampToken attribute).
    pub fn from_der(der: &[u8]) -> Result<ParsedToken, TsaError> {
        if der.len() > MAX_ANSWER_BYTES {
            return Err(TsaError::ResponseTooLarge {
                size: der.len(),
                limit: MAX_ANSWER_BYTES,
            });
        }
        ParsedToken::from_content_info_der(der.to_vec())
    }

    fn from_content_info_der(der: Vec<u8>) -> Result<ParsedToken, TsaError> {
        let signed_data = CmsSignedData::read(&der, &TOKEN_LIMITS)?;
        // CertificateChoices: only plain X.509 certificates (a SEQUENCE) matter here, and
        // each must read; attribute certificates and other formats are skipped.
        let certificates: Vec<Vec<u8>> = signed_data
            .x509_certificates()
            .into_iter()
            .map(|element| {
                Certificate::from_der(element)
                    .map(|_| element.to_vec())
                    .map_err(|e| TsaError::malformed("certificate in SignedData", e))
            })
            .collect::<Result<_, _>>()?;
        if signed_data.econtent_type() != oids::CT_TST_INFO {
            return Err(TsaError::malformed(
                "SignedData",
                format!(
                    "eContentType {} is not id-ct-TSTInfo",
                    signed_data.econtent_type()
                ),
            ));
        }
        let tst_der = signed_data
            .econtent()
            .ok_or_else(|| TsaError::malformed("SignedData", "no eContent (TSTInfo)"))?;
        let tst_info = TstInfo::from_der(tst_der).map_err(|e| TsaError::malformed("TSTInfo", e))?;
        Ok(ParsedToken {
            der,
            tst_info,
            signed_data,
            certificates,
        })
    }

    /// The token's DER (`ContentInfo`), to store or embed.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn tst_info(&self) -> &TstInfo {
        &self.tst_info
    }

    /// The DER TSTInfo exactly as signed.
    pub fn tst_info_der(&self) -> &[u8] {
        self.signed_data.econtent().unwrap_or_default()
    }

    /// DER of every certificate the token carries, in the order sent.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }

    pub fn policy(&self) -> ObjectIdentifier {
        self.tst_info.policy
    }

    pub fn gen_time(&self) -> OffsetDateTime {
        self.tst_info.gen_time.to_offset_date_time()
    }

    /// The imprint's hash algorithm, or an error naming an algorithm imza does not accept.
    pub fn imprint_algorithm(&self) -> Result<DigestAlgorithm, TsaError> {
        imprint_algorithm(&self.tst_info.message_imprint.hash_algorithm)
    }

    pub fn hashed_message(&self) -> &[u8] {
        self.tst_info.message_imprint.hashed_message.as_bytes()
    }

    /// serialNumber as `0x...` hex (`-0x...` for the negative values some TSAs write).
    pub fn serial_hex(&self) -> String {
        int_hex(&self.tst_info.serial_number)
    }

    pub fn nonce_hex(&self) -> Option<String> {
        self.tst_info.nonce.as_ref().map(int_hex)
    }

    /// The `tsa` name as `directoryName CN=...,O=...` (or `dns ...`, `uri ...`, `other`).
    pub fn tsa_name(&self) -> Option<String> {
        self.tst_info.tsa.as_ref().map(describe_general_name)
    }

    /// How many SignerInfos the token has (RFC 3161 wants exactly one).
    pub fn signer_count(&self) -> usize {
        self.signed_data.signers.len()
    }
}

/// A GeneralName in words, for messages and `imza ts verify`.
pub(crate) fn describe_general_name(name: &GeneralName) -> String {
    match name {
        GeneralName::DirectoryName(n) => format!("directoryName {n}"),
        GeneralName::DnsName(s) => format!("dns {s}"),
        GeneralName::UniformResourceIdentifier(s) => format!("uri {s}"),
        GeneralName::Rfc822Name(s) => format!("email {s}"),
        _ => "a name of another kind".into(),
    }
}
