//! Certificate revocation lists (RFC 5280 §5) as revocation checking (§6.3) uses them.

use der::Decode;
use x509_cert::crl::CertificateList;

use crate::ValidationError;

/// One parsed CRL.
#[derive(Clone, Debug)]
pub struct Crl {
    der: Vec<u8>,
    crl: CertificateList,
}

impl Crl {
    pub fn from_der(der: impl Into<Vec<u8>>) -> Result<Crl, ValidationError> {
        let der = der.into();
        let crl =
            CertificateList::from_der(&der).map_err(|e| ValidationError::malformed("CRL", e))?;
        Ok(Crl { der, crl })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn inner(&self) -> &CertificateList {
        &self.crl
    }
}

/// Every CRL in `bytes`: one DER CRL, or any number of PEM `X509 CRL` blocks.
pub fn read_crls(bytes: &[u8]) -> Result<Vec<Crl>, ValidationError> {
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let text =
            std::str::from_utf8(bytes).map_err(|e| ValidationError::malformed("PEM CRLs", e))?;
        let blocks = imza_core::pem::all_blocks(text, "CRL")
            .map_err(|e| ValidationError::malformed("PEM CRLs", e))?;
        blocks
            .into_iter()
            .filter(|(label, _)| label == "X509 CRL")
            .map(|(_, der)| Crl::from_der(der))
            .collect()
    } else {
        Ok(vec![Crl::from_der(bytes.to_vec())?])
    }
}
