//! Building PKCS#10 certificate requests (RFC 2986) signed by any [`SigningKey`]: how a key that
//! never leaves a card or token proves possession to the CA.

use der::asn1::BitString;
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};

use crate::{CoreError, SigningKey};

/// A DER CSR for `subject` carrying `key`'s public key and signed by it, without attributes:
/// the CA's profile decides extensions, so asking for any would only be refused or ignored.
/// The signature is checked against the public key before the CSR is returned, so a token
/// that signs with some other key is caught here and not at the CA.
pub fn build_csr(subject: &Name, key: &dyn SigningKey) -> Result<Vec<u8>, CoreError> {
    let spki_der = key.public_key_der()?;
    let info = CertReqInfo {
        version: Version::V1,
        subject: subject.clone(),
        public_key: SubjectPublicKeyInfoOwned::from_der(&spki_der)
            .map_err(|e| CoreError::malformed("public key", e))?,
        attributes: Default::default(),
    };
    let info_der = info.to_der().map_err(CoreError::der)?;
    let algorithm = key.signature_algorithm();
    let signature = key.sign(&info_der)?;
    crate::verify::verify_signature(&spki_der, &algorithm, &info_der, &signature).map_err(|e| {
        CoreError::Signing(format!(
            "{} made a CSR signature its own public key does not verify: {e}",
            key.describe()
        ))
    })?;
    CertReq {
        info,
        algorithm,
        signature: BitString::from_bytes(&signature).map_err(CoreError::der)?,
    }
    .to_der()
    .map_err(CoreError::der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::software::SoftwareKey;
    use crate::KeyAlgorithm;
    use std::str::FromStr;

    #[test]
    fn openssl_reads_and_verifies_the_csr() {
        for algorithm in [KeyAlgorithm::EcP256, KeyAlgorithm::Rsa2048] {
            let key = SoftwareKey::generate(algorithm).unwrap();
            let subject =
                Name::from_str("CN=Əli Məmmədov,serialNumber=PNOAZ-1AB2C3D,C=AZ").unwrap();
            let der = build_csr(&subject, &key).unwrap();
            let request = openssl::x509::X509Req::from_der(&der).unwrap();
            let public = request.public_key().unwrap();
            assert!(request.verify(&public).unwrap(), "{algorithm}");
            assert_eq!(
                public.public_key_to_der().unwrap(),
                key.public_key_der().unwrap()
            );
            let cn = request
                .subject_name()
                .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                .next()
                .unwrap();
            assert_eq!(cn.data().to_string().unwrap(), "Əli Məmmədov");
        }
    }
}
