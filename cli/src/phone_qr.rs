//! `imza phone qr`: the phone's side of the portal's QR login (see `imza_portal::qr`). The
//! link the QR code holds names the portal's origin; the phone posts it to
//! `{origin}/portal/qr/v1/scan` (the portal checks it is fresh and its own) and gets the
//! portal's name and the login's challenge, shows who asks, and — after the PIN, checked on
//! the phone by its key store — signs `answer_digest(origin, token, challenge)` with its
//! authentication key and posts it with its certificate to `{origin}/portal/qr/v1/answer`.
//! The origin signed over is the one the link named and the phone showed: a portal that is
//! not that origin cannot use the signature.

use std::time::Duration;

use serde_json::json;

use imza_core::alg::DigestAlgorithm;
use imza_http::{HttpClient, HttpError};
use imza_mobile_sign::phone::{check_pin_format, Wallet};
use imza_mobile_sign::protocol::{decode_base64, encode_base64, SessionKind};
use imza_portal::qr::{
    answer_digest, link_origin, link_token, PhoneAnswer, ScanAnswer, ScanRequest,
};

use crate::mobile::{phone_failure, PhoneQrArgs};
use crate::output::{input, secret, CliResult, Failure};

/// Largest answer read from the portal.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// One step on the phone's screen: a line, or a JSON object with --json.
fn show(json: bool, event: serde_json::Value, line: String) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = if json {
        writeln!(out, "{event}")
    } else {
        writeln!(out, "{line}")
    };
    let _ = out.flush();
}

/// What the portal said when it refused (its `{"error"}`), or the exchange's failure.
fn refused(e: HttpError) -> Failure {
    match e {
        HttpError::Status { status, said, .. } => {
            let message = serde_json::from_str::<serde_json::Value>(&said)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(said);
            Failure::Verdict(format!("the portal refused (HTTP {status}): {message}"))
        }
        other => Failure::Environment(format!("the portal cannot be reached: {other}")),
    }
}

fn post<T: serde::de::DeserializeOwned>(
    fetcher: &HttpClient,
    url: &str,
    body: &impl serde::Serialize,
) -> Result<T, Failure> {
    let body = serde_json::to_vec(body).map_err(|e| Failure::Internal(e.to_string()))?;
    let answer = fetcher
        .post(url, "application/json", "application/json", &body)
        .map_err(refused)?;
    serde_json::from_slice(&answer)
        .map_err(|e| Failure::Environment(format!("{url} answered something unreadable: {e}")))
}

pub fn run(args: &PhoneQrArgs, mut wallet: Wallet) -> CliResult {
    let origin = link_origin(&args.link)
        .map_err(|e| input(format!("--link: {e}")))?
        .to_string();
    let token = link_token(&args.link, &origin).map_err(|e| input(format!("--link: {e}")))?;
    // The answer identifies the citizen: over HTTPS, or plain HTTP to this machine only.
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
        .iter()
        .any(|prefix| origin.starts_with(prefix));
    if !origin.starts_with("https://") && !loopback {
        return Err(input(format!(
            "--link: {origin} is not HTTPS; the phone answers only over HTTPS (or plain HTTP \
             on loopback)"
        )));
    }
    let fetcher = HttpClient {
        timeout: Duration::from_secs(20),
        max_bytes: MAX_ANSWER_BYTES,
    };
    let scanned: ScanAnswer = post(
        &fetcher,
        &format!("{origin}/portal/qr/v1/scan"),
        &ScanRequest {
            link: args.link.clone(),
        },
    )?;
    // The phone shows and signs over the origin it scanned, not one the server names.
    if scanned.origin != origin {
        return Err(Failure::Verdict(format!(
            "the portal at {origin} calls itself {}: refused",
            scanned.origin
        )));
    }
    let challenge = decode_base64(&scanned.challenge)
        .ok()
        .filter(|c| c.len() == 32)
        .ok_or_else(|| Failure::Verdict("the portal's challenge is not 32 bytes".into()))?;
    show(
        args.json,
        json!({
            "event": "request",
            "portalName": scanned.portal_name,
            "origin": origin,
            "answerWithinSeconds": scanned.answer_within_seconds,
        }),
        format!(
            "{:?} at {origin} asks you to log in with this phone",
            scanned.portal_name
        ),
    );
    if args.refuse {
        show(
            args.json,
            json!({ "event": "refused" }),
            "refused: nothing was signed".into(),
        );
        return Ok(());
    }
    let pin = secret(args.pin_env.as_deref(), "signing PIN")?;
    check_pin_format(&pin).map_err(phone_failure)?;
    let digest = answer_digest(&origin, &token, &challenge);
    let signature = wallet
        .sign(
            SessionKind::Authentication,
            &pin,
            DigestAlgorithm::Sha256,
            &digest,
        )
        .map_err(phone_failure)?;
    let answer = PhoneAnswer {
        link: args.link.clone(),
        certificate: encode_base64(wallet.auth_certificate()),
        signature: encode_base64(&signature),
    };
    let _: serde_json::Value = post(&fetcher, &format!("{origin}/portal/qr/v1/answer"), &answer)?;
    show(
        args.json,
        json!({ "event": "answered", "origin": origin, "result": "OK" }),
        format!("answered: {origin} took the login"),
    );
    Ok(())
}
