//! The work one validation may do ([`Budget`]): every signature check and every candidate
//! path is counted here, across path building, CRL signer paths and CRLs, so a hostile pool
//! or CRL set ends with [`ValidationError::BudgetExceeded`] instead of spinning.

use crate::signature::{SignatureCache, SignatureFailure, Signed};
use crate::{Budget, BudgetLimit, ValidationError};

#[derive(Debug)]
pub(crate) struct Work {
    pub budget: Budget,
    pub signature_checks: usize,
    pub candidate_paths: usize,
}

impl Work {
    pub fn new(budget: Budget) -> Work {
        Work {
            budget,
            signature_checks: 0,
            candidate_paths: 0,
        }
    }

    /// Counts one candidate path (a chain that reached a trust anchor and is checked).
    pub fn charge_path(&mut self) -> Result<(), ValidationError> {
        if self.candidate_paths >= self.budget.candidate_paths {
            return Err(self.exceeded(BudgetLimit::CandidatePaths {
                limit: self.budget.candidate_paths,
            }));
        }
        self.candidate_paths += 1;
        Ok(())
    }

    /// Counts a signature check that is deferred (a DSA key inheriting its parameters is
    /// checked during §6.1 processing), so that stepping through such keys costs budget too.
    pub fn charge_signature(&mut self) -> Result<(), ValidationError> {
        if self.signature_checks >= self.budget.signature_checks {
            return Err(self.signatures_exhausted());
        }
        self.signature_checks += 1;
        Ok(())
    }

    fn signatures_exhausted(&self) -> ValidationError {
        self.exceeded(BudgetLimit::SignatureChecks {
            limit: self.budget.signature_checks,
        })
    }

    /// [`ValidationError::BudgetExceeded`] at `limit`, with the work done so far.
    pub fn exceeded(&self, limit: BudgetLimit) -> ValidationError {
        ValidationError::BudgetExceeded {
            limit,
            signature_checks: self.signature_checks,
            candidate_paths: self.candidate_paths,
            best_failure: None,
        }
    }

    /// Checks the signature on `signed` with the key `spki_der` within the budget. The outer
    /// error is the budget running out; the inner one says why the signature does not verify.
    pub fn verify(
        &mut self,
        cache: &SignatureCache,
        spki_der: &[u8],
        signed: &impl Signed,
    ) -> Result<Result<(), SignatureFailure>, ValidationError> {
        self.charge_signature()?;
        Ok(cache.verify(
            spki_der,
            signed.signature_algorithm(),
            signed.tbs_hash(),
            signed.tbs_bytes(),
            signed.signature_bytes(),
        ))
    }
}
