//! Partitioned CRLs (RFC 5280 §5.2.5): a CA with a national population of certificates cuts
//! its CRL into shards, so that each CRL a relying party downloads stays small however many
//! certificates the CA has.
//!
//! - **The partition is fixed at issuance.** A CA created with `n` shards (`imza ca init
//!   --crl-shards n`, n ≥ 2; only a subordinate CA) puts every certificate it issues into shard
//!   [`shard_of`]`(serial, n)` — the serial, a random number, read as an unsigned integer,
//!   modulo `n` — records the shard with the certificate, and writes the shard's URL
//!   ([`shard_crl_url`], `{base}/crl/{ca}/{shard}.crl`) as the certificate's one CRL
//!   distribution point. The shard is the stored column, not the formula: what a certificate
//!   says is what its shard CRL lists.
//! - **Each shard CRL names its scope.** It carries a critical issuingDistributionPoint whose
//!   fullName is exactly that URL and nothing else (no onlyContainsUserCerts: a CA or service
//!   certificate the CA issues is in a shard like any other), and lists the revoked
//!   certificates of its shard only. A relying party (§6.3.3 (b)(2)(i)) uses a CRL for a
//!   certificate only when the IDP's name matches the certificate's distribution point, so a
//!   shard's CRL can never pass a certificate of another shard as good.
//! - **Every certificate is in exactly one shard**, and the shards together list every
//!   revoked certificate of the CA (what a complete CRL would). A certificate without a CRL
//!   distribution point could only be covered by a complete CRL, which a partitioned CA does
//!   not publish, so such a CA issues one only when relying parties do not check it at all
//!   (an OCSP responder's, with id-pkix-ocsp-nocheck); it is still given a shard and listed
//!   there once revoked.
//! - **CRL numbers**: the shards of a CA draw on the CA's one sequence (unique per CA in the
//!   store). One run numbers shard `k` `first + k`, `first` being one above the highest number
//!   the CA has used, so each shard's numbers increase from run to run (§5.2.3 asks that per
//!   scope) and two runs at once collide on a number and one of them stops.
//! - **Bounded work**: a run reads one shard's revoked entries at a time (one range of an index
//!   of revoked rows), signs shards in parallel, and commits them [`SHARDS_PER_COMMIT`] at a
//!   time with one audit entry each, so memory holds a few shards, never the whole list. A run
//!   that fails part way leaves the committed shards' new CRLs and the others' previous ones,
//!   each valid until its own nextUpdate; the next run signs them all again.

use rayon::prelude::*;
use serde_json::json;
use time::OffsetDateTime;
use x509_cert::name::Name;

use imza_core::clock::rfc3339;
use imza_core::crl::{sign_crl, CrlFields};
use imza_core::SigningKey;

use crate::audit::AuditEvent;
use crate::authority::SignedCrl;
use crate::error::CaError;
use crate::store::{CaStore, CrlRecord, StoreError};

/// Most shards a CA's CRL may be cut into: 4,096 shards keep each CRL near 250 entries at a
/// million revoked certificates, and one run stays a few thousand small signatures.
pub const MAX_CRL_SHARDS: u32 = 4096;

/// Shard CRLs signed between two commits: the memory a run holds is this many shard CRLs
/// (plus the ones being built), and a run costs one durable commit per this many.
pub const SHARDS_PER_COMMIT: usize = 32;

/// The shard of the certificate with `serial` in a CA of `shards` shards: the serial's
/// unsigned big-endian value modulo `shards`. `None` when the CA is not partitioned
/// (`shards` 0 or 1).
pub fn shard_of(serial: &[u8], shards: u32) -> Option<u32> {
    if shards < 2 {
        return None;
    }
    let modulus = u64::from(shards);
    let rest = serial
        .iter()
        .fold(0u64, |rest, byte| (rest * 256 + u64::from(*byte)) % modulus);
    u32::try_from(rest).ok()
}

/// Where shard `shard` of CA `ca` is published: the CRL distribution point of its
/// certificates and the issuingDistributionPoint of its CRLs, served by `imza serve` at
/// `/crl/{ca}/{shard}.crl`. A path segment of its own, because a CA name may itself end in
/// `-` and digits (`{ca}-{shard}` would make shard 2 of `citizens` CA `citizens-2`'s CRL).
pub fn shard_crl_url(base_url: &str, ca: &str, shard: u32) -> String {
    format!("{base_url}/crl/{ca}/{shard}.crl")
}

/// What one signing of a CA's CRLs produced (every shard, or the one CRL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlRun {
    /// CRLs signed and stored.
    pub crls: usize,
    /// Entries over all of them: every revoked certificate of the CA, once.
    pub revoked: usize,
    /// The CRL numbers used, lowest and highest.
    pub numbers: (u64, u64),
    pub next_update: OffsetDateTime,
}

/// A partitioned CA's key and names, ready to sign its shard CRLs.
pub(crate) struct ShardSigner<'a> {
    pub store: &'a dyn CaStore,
    pub ca: &'a str,
    pub base_url: &'a str,
    pub shards: u32,
    pub issuer: &'a Name,
    pub issuer_key_id: &'a [u8],
    pub key: &'a dyn SigningKey,
}

impl ShardSigner<'_> {
    /// Signs and stores the CRL of every shard, `this_update` to `next_update`, calling
    /// `stored` for each once it is committed.
    pub(crate) fn sign_all(
        &self,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        stored: &mut dyn FnMut(&SignedCrl),
    ) -> Result<CrlRun, CaError> {
        let first = self.store.last_crl_number(self.ca)?.unwrap_or(0) + 1;
        let shards: Vec<u32> = (0..self.shards).collect();
        let mut revoked = 0;
        for group in shards.chunks(SHARDS_PER_COMMIT) {
            let signed: Vec<SignedCrl> = group
                .par_iter()
                .map(|&shard| {
                    self.sign_one(shard, first + u64::from(shard), this_update, next_update)
                })
                .collect::<Result<_, _>>()?;
            let events: Vec<AuditEvent> = signed.iter().map(|s| self.event(s)).collect();
            let records: Vec<CrlRecord> = signed.iter().map(|s| s.record.clone()).collect();
            self.store
                .insert_crls(&records, &events)
                .map_err(|e| match e {
                    StoreError::Conflict(_) => CaError::InvalidRequest(format!(
                        "a CRL number of CA {} from {first} on was taken by a concurrent run; \
                         run imza ca crl again",
                        self.ca
                    )),
                    other => other.into(),
                })?;
            drop(records);
            for crl in &signed {
                revoked += crl.revoked;
                stored(crl);
            }
        }
        Ok(CrlRun {
            crls: shards.len(),
            revoked,
            numbers: (first, first + u64::from(self.shards.saturating_sub(1))),
            next_update,
        })
    }

    fn sign_one(
        &self,
        shard: u32,
        number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<SignedCrl, CaError> {
        let entries = self.store.revoked_in_shard(self.ca, shard)?;
        let url = shard_crl_url(self.base_url, self.ca, shard);
        let der = sign_crl(
            CrlFields {
                issuer: self.issuer,
                issuer_key_id: self.issuer_key_id,
                number,
                this_update,
                next_update,
                distribution_point: Some(&url),
            },
            &entries,
            self.key,
            &mut |_, _| {},
        )?;
        Ok(SignedCrl {
            record: CrlRecord {
                ca: self.ca.to_string(),
                shard: Some(shard),
                number,
                this_update,
                next_update,
                der,
            },
            revoked: entries.len(),
        })
    }

    fn event(&self, signed: &SignedCrl) -> AuditEvent {
        let record = &signed.record;
        AuditEvent {
            at: record.this_update,
            action: "ca.crl".into(),
            ca: self.ca.to_string(),
            details: json!({
                "number": record.number,
                "shard": record.shard,
                "entries": signed.revoked,
                "next_update": rfc3339(record.next_update),
                "crl_sha256": hex::encode(openssl::sha::sha256(&record.der)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unpartitioned_ca_has_no_shards() {
        assert_eq!(shard_of(&[0x42; 16], 0), None);
        assert_eq!(shard_of(&[0x42; 16], 1), None);
    }

    #[test]
    fn the_shard_is_the_serial_modulo_the_shard_count() {
        assert_eq!(shard_of(&[0x01, 0x00], 7), Some(256 % 7));
        assert_eq!(shard_of(&[0xFF; 20], MAX_CRL_SHARDS), Some(4095));
        let serial = 0x4A3B_2C1D_0E0F_1011_u64;
        assert_eq!(
            shard_of(&serial.to_be_bytes(), 1000),
            Some(u32::try_from(serial % 1000).unwrap())
        );
        assert_eq!(shard_of(&[], 16), Some(0));
    }

    #[test]
    fn random_serials_spread_over_every_shard() {
        let mut counts = [0u32; 64];
        for _ in 0..64_000 {
            let serial = imza_core::cert::random_serial().unwrap();
            counts[shard_of(&serial, 64).unwrap() as usize] += 1;
        }
        // 1,000 expected per shard; 6 standard deviations is about ±190.
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }

    #[test]
    fn a_shard_url_is_a_path_under_the_ca_name() {
        assert_eq!(
            shard_crl_url("http://pki.example", "citizens", 2),
            "http://pki.example/crl/citizens/2.crl"
        );
    }
}
