//! The time-stamping authority (RFC 3161 §2): takes a DER `TimeStampReq`, answers a DER
//! `TimeStampResp`, granted with a signed token or refused with the `PKIFailureInfo` that
//! says why. No transport here: the HTTP routes (RFC 3161 §3.4) wrap [`TimeStampAuthority::respond`].

use std::sync::Arc;

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use imza_core::clock::{from_x509_time, rfc3339};
use imza_core::{oids, SigningKey};
use time::OffsetDateTime;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::Certificate;
use x509_tsp::{Accuracy, TspVersion};

use crate::clock_check::{ClockCheck, TrustSystemClock};
use crate::request::TimeStampRequest;
use crate::serial::{serial_int, RandomSerials, SerialNumberSource};
use crate::status::{
    rejection, FailureInfo, PkiStatus, PkiStatusInfo, TimeStampResp, SYSTEM_FAILURE_RESPONSE,
};
use crate::token::TokenSigner;
use crate::tst_info::{GenTime, TstInfo};
use crate::{SystemFault, TsaError};

/// What a TSA is made of. [`TsaConfig::new`] fills in the usual defaults.
pub struct TsaConfig {
    /// The TSA certificate (DER): critical, sole timeStamping EKU (RFC 3161 §2.3).
    pub certificate: Vec<u8>,
    /// Further certificates (DER) sent with the TSA's when a request sets certReq: the issuing
    /// CA and any intermediates. Leave the root out: a verifier must already hold it.
    pub chain: Vec<Vec<u8>>,
    /// The key certified by `certificate`.
    pub key: Arc<dyn SigningKey>,
    /// The TSA policy under which every token is issued (TSTInfo.policy).
    pub policy: ObjectIdentifier,
    /// How far genTime may be from UTC (TSTInfo.accuracy); `None` leaves it out.
    pub accuracy: Option<Accuracy>,
    /// Whether TSTInfo names the TSA (`tsa` field, the certificate's subject).
    pub include_tsa_name: bool,
    pub serials: Arc<dyn SerialNumberSource>,
    pub clock_check: Arc<dyn ClockCheck>,
}

impl TsaConfig {
    /// A configuration with 1 second accuracy (genTime is `now` truncated to its second), the
    /// TSA's name in every token, 128-bit random serial numbers and no clock check.
    pub fn new(
        certificate: Vec<u8>,
        chain: Vec<Vec<u8>>,
        key: Arc<dyn SigningKey>,
        policy: ObjectIdentifier,
    ) -> TsaConfig {
        TsaConfig {
            certificate,
            chain,
            key,
            policy,
            accuracy: Some(accuracy_seconds(1)),
            include_tsa_name: true,
            serials: Arc::new(RandomSerials),
            clock_check: Arc::new(TrustSystemClock),
        }
    }
}

/// `Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, ... }` of whole seconds.
pub fn accuracy_seconds(seconds: u64) -> Accuracy {
    Accuracy {
        seconds: Some(seconds),
        millis: None,
        micros: None,
    }
}

/// A ready TSA: configuration checked, fixed parts of every token prepared.
pub struct TimeStampAuthority {
    policy: ObjectIdentifier,
    accuracy: Option<Accuracy>,
    tsa_name: Option<GeneralName>,
    serials: Arc<dyn SerialNumberSource>,
    clock_check: Arc<dyn ClockCheck>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    signer: TokenSigner,
}

/// The answer to one request: the DER `TimeStampResp` to send, and what it says.
#[derive(Debug)]
pub struct TsaAnswer {
    pub der: Vec<u8>,
    pub outcome: Outcome,
}

/// What an answer says, for logs and metrics.
#[derive(Debug)]
pub enum Outcome {
    /// A token was issued with this serial number (unsigned big-endian).
    Granted { serial: Vec<u8> },
    /// The request was refused with `failure`, for the reason in `error`.
    Rejected {
        failure: FailureInfo,
        error: TsaError,
    },
}

impl TsaAnswer {
    pub fn status(&self) -> PkiStatus {
        match self.outcome {
            Outcome::Granted { .. } => PkiStatus::Granted,
            Outcome::Rejected { .. } => PkiStatus::Rejection,
        }
    }

    pub fn failure(&self) -> Option<FailureInfo> {
        match &self.outcome {
            Outcome::Granted { .. } => None,
            Outcome::Rejected { failure, .. } => Some(*failure),
        }
    }
}

/// Text sent in place of the details of a fault inside the TSA.
const SYSTEM_FAILURE_TEXT: &str = "the time-stamping authority cannot issue tokens at the moment";

impl TimeStampAuthority {
    /// Checks the configuration: the certificate is a time-stamping certificate (RFC 3161
    /// §2.3: critical extendedKeyUsage with timeStamping as its only purpose; keyUsage, if
    /// present, allowing digitalSignature or nonRepudiation) and certifies `key`.
    pub fn new(config: TsaConfig) -> Result<TimeStampAuthority, TsaError> {
        let certificate = Certificate::from_der(&config.certificate)
            .map_err(|e| TsaError::BadCertificate(format!("TSA certificate: {e}")))?;
        check_time_stamping_certificate(&certificate)?;
        let key_spki = config.key.public_key_der().map_err(TsaError::Signing)?;
        let cert_spki = certificate
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| TsaError::der("public key", e))?;
        if key_spki != cert_spki {
            return Err(TsaError::KeyMismatch {
                key: config.key.describe(),
            });
        }
        let chain = config
            .chain
            .iter()
            .map(|der| {
                Certificate::from_der(der)
                    .map_err(|e| TsaError::BadCertificate(format!("chain certificate: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let validity = &certificate.tbs_certificate.validity;
        Ok(TimeStampAuthority {
            policy: config.policy,
            accuracy: config.accuracy,
            tsa_name: config
                .include_tsa_name
                .then(|| GeneralName::DirectoryName(certificate.tbs_certificate.subject.clone())),
            serials: config.serials,
            clock_check: config.clock_check,
            not_before: from_x509_time(&validity.not_before),
            not_after: from_x509_time(&validity.not_after),
            signer: TokenSigner::new(config.key, &certificate, &config.certificate, &chain)?,
        })
    }

    /// The policy every token is issued under.
    pub fn policy(&self) -> ObjectIdentifier {
        self.policy
    }

    /// Answers one DER `TimeStampReq` at time `now`. Never panics and always has an answer:
    /// a refusal when the request is bad or the TSA cannot stamp (RFC 3161 §2.4.2).
    ///
    /// A panic inside a plugged-in part (clock check, serial source, signing backend) is
    /// caught and answered as `systemFailure`, so one bad request cannot take a server down.
    pub fn respond(&self, request_der: &[u8], now: OffsetDateTime) -> TsaAnswer {
        let granted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.grant(request_der, now)
        }))
        .unwrap_or_else(|_| Err(TsaError::SystemFailure(SystemFault::Panicked)));
        match granted {
            Ok((der, serial)) => TsaAnswer {
                der,
                outcome: Outcome::Granted { serial },
            },
            Err(error) => refuse(error),
        }
    }

    fn grant(
        &self,
        request_der: &[u8],
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, Vec<u8>), TsaError> {
        let request = TimeStampRequest::from_der(request_der)?;
        if let Some(requested) = request.policy() {
            if requested != self.policy {
                return Err(TsaError::UnacceptedPolicy {
                    requested,
                    served: self.policy,
                });
            }
        }
        // RFC 3161 §2.4.1: an extension the TSA does not recognise, critical or not, is
        // refused with unacceptedExtension. imza's TSA recognises none.
        if let Some(oid) = request.extension_oids().first() {
            return Err(TsaError::UnacceptedExtension { oid: *oid });
        }
        self.clock_check.check(now)?;
        if now < self.not_before || now > self.not_after {
            return Err(TsaError::CertificateNotValid {
                at: rfc3339(now),
                not_before: rfc3339(self.not_before),
                not_after: rfc3339(self.not_after),
            });
        }
        let serial = self.serials.next_serial()?;
        let tst_info = TstInfo {
            version: TspVersion::V1,
            policy: self.policy,
            message_imprint: request.message_imprint().clone(),
            serial_number: serial_int(&serial)?,
            gen_time: GenTime::whole_second(now),
            accuracy: self.accuracy.clone(),
            ordering: false,
            nonce: request.nonce().cloned(),
            tsa: self.tsa_name.clone(),
            extensions: None,
        };
        let tst_der = tst_info.to_der().map_err(|e| TsaError::der("TSTInfo", e))?;
        let token = self.signer.sign(&tst_der, request.cert_req(), now)?;
        let response = TimeStampResp {
            status: PkiStatusInfo {
                status: PkiStatus::Granted,
                status_string: None,
                fail_info: None,
            },
            time_stamp_token: Some(token),
        };
        let der = response
            .to_der()
            .map_err(|e| TsaError::der("TimeStampResp", e))?;
        Ok((der, serial))
    }
}

/// The rejection answering a request refused for `error` (its public reason only).
pub(crate) fn refuse(error: TsaError) -> TsaAnswer {
    let failure = error.failure_info();
    // What the clock check said (a command's output) stays in the operator's log.
    let text = match &error {
        TsaError::TimeNotAvailable(_) => "the TSA's time source is not available".to_string(),
        e if e.reason_is_public() => e.to_string(),
        _ => SYSTEM_FAILURE_TEXT.to_string(),
    };
    let der = rejection(failure, Some(&text))
        .and_then(|resp| resp.to_der())
        .unwrap_or_else(|_| SYSTEM_FAILURE_RESPONSE.to_vec());
    TsaAnswer {
        der,
        outcome: Outcome::Rejected { failure, error },
    }
}

/// RFC 3161 §2.3: "The corresponding certificate MUST contain only one instance of the
/// extended key usage field extension ... with KeyPurposeID having value id-kp-timeStamping.
/// This extension MUST be critical."
pub(crate) fn check_time_stamping_certificate(certificate: &Certificate) -> Result<(), TsaError> {
    let subject = certificate.tbs_certificate.subject.to_string();
    let not = |reason: &str| TsaError::NotTimeStampingCertificate {
        subject: subject.clone(),
        reason: reason.to_string(),
    };
    let extensions = certificate
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or(&[]);
    let mut ekus = extensions
        .iter()
        .filter(|e| e.extn_id == oids::EXT_EXTENDED_KEY_USAGE);
    let eku = ekus.next().ok_or_else(|| not("no extendedKeyUsage"))?;
    if ekus.next().is_some() {
        return Err(not("more than one extendedKeyUsage extension"));
    }
    if !eku.critical {
        return Err(not("extendedKeyUsage is not critical"));
    }
    let purposes = ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
        .map_err(|_| not("extendedKeyUsage cannot be read"))?;
    if purposes.0 != [oids::KP_TIME_STAMPING] {
        return Err(not("extendedKeyUsage has purposes other than timeStamping"));
    }
    if let Some(ku) = extensions.iter().find(|e| e.extn_id == oids::EXT_KEY_USAGE) {
        let usage = KeyUsage::from_der(ku.extn_value.as_bytes())
            .map_err(|_| not("keyUsage cannot be read"))?;
        if !usage.0.contains(KeyUsages::DigitalSignature)
            && !usage.0.contains(KeyUsages::NonRepudiation)
        {
            return Err(not(
                "keyUsage allows neither digitalSignature nor nonRepudiation",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_and_answers_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<TimeStampAuthority>();
        fn sent<T: Send>() {}
        sent::<TsaAnswer>();
    }
}
