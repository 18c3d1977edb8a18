//! The QR login's device link: made and checked by the server alone, refused when photographed
//! and used later, when used for another browser's session, or when altered.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use time::{Duration, OffsetDateTime};

use imza_portal::qr::{link_token, QrError, QrSession, MAX_LINK_AGE_SECONDS};

const ORIGIN: &str = "https://portal.gov.az";

#[test]
fn a_fresh_link_checks_and_names_its_session() {
    let t0 = OffsetDateTime::now_utc();
    let session = QrSession::start(t0).unwrap();
    assert!(!format!("{session:?}").contains(&format!("{:?}", session.secret())));
    for shown_after in [0, 1, 7, 120] {
        let shown = t0 + Duration::seconds(shown_after);
        let link = session.device_link(ORIGIN, "aze", shown);
        assert!(link.starts_with(
            "https://portal.gov.az/qr/v1?deviceLinkType=QR&sessionType=auth&sessionToken="
        ));
        assert!(
            link.contains(&format!("&elapsedSeconds={shown_after}&")),
            "{link}"
        );
        assert_eq!(link_token(&link, ORIGIN).unwrap(), session.token);
        let checked = session
            .check_link(&link, ORIGIN, shown + Duration::seconds(2))
            .unwrap();
        assert_eq!(checked.elapsed_seconds, shown_after);
        assert_eq!(checked.language, "aze");
    }
    // Regenerated every second: consecutive links differ.
    assert_ne!(
        session.device_link(ORIGIN, "eng", t0),
        session.device_link(ORIGIN, "eng", t0 + Duration::seconds(1))
    );
}

#[test]
fn a_photographed_link_used_later_is_stale() {
    let t0 = OffsetDateTime::now_utc();
    let session = QrSession::start(t0).unwrap();
    let photographed = session.device_link(ORIGIN, "eng", t0 + Duration::seconds(3));
    let late = t0 + Duration::seconds(3 + MAX_LINK_AGE_SECONDS + 1);
    assert_eq!(
        session.check_link(&photographed, ORIGIN, late),
        Err(QrError::Stale {
            age: MAX_LINK_AGE_SECONDS + 1
        })
    );
    // A link claiming a time yet to come is refused too.
    let ahead = session.device_link(ORIGIN, "eng", t0 + Duration::seconds(30));
    assert!(matches!(
        session.check_link(&ahead, ORIGIN, t0 + Duration::seconds(10)),
        Err(QrError::Stale { age: -20 })
    ));
}

#[test]
fn a_link_for_another_session_or_altered_is_refused() {
    let t0 = OffsetDateTime::now_utc();
    let mine = QrSession::start(t0).unwrap();
    let theirs = QrSession::start(t0).unwrap();
    let their_link = theirs.device_link(ORIGIN, "aze", t0);
    assert_eq!(
        mine.check_link(&their_link, ORIGIN, t0),
        Err(QrError::WrongCode)
    );
    // Their token with a code made up: the code does not match.
    let forged = their_link.replace(&theirs.token, &mine.token);
    assert_eq!(
        mine.check_link(&forged, ORIGIN, t0),
        Err(QrError::WrongCode)
    );
    // My link, its seconds moved forward to look fresh later: the code no longer matches.
    let link = mine.device_link(ORIGIN, "aze", t0);
    let moved = link.replace("elapsedSeconds=0", "elapsedSeconds=60");
    assert_eq!(
        mine.check_link(&moved, ORIGIN, t0 + Duration::seconds(60)),
        Err(QrError::WrongCode)
    );
    // Another site's link, or a made-up one.
    assert!(matches!(
        mine.check_link(&link, "https://portal-gov.az", t0),
        Err(QrError::Malformed(_))
    ));
    for bad in [
        String::new(),
        format!("{ORIGIN}/qr/v1?"),
        link.replace("deviceLinkType=QR", "deviceLinkType=App"),
        link.replace("lang=aze", "lang=rus"),
        link.replace("elapsedSeconds=0", "elapsedSeconds=-1"),
        link.replace("elapsedSeconds=0", "elapsedSeconds=+0"),
        format!("{link}&authCode=AAAA"),
        format!("{link}&extra=1"),
        format!("{link}{}", "A".repeat(600)),
    ] {
        assert!(
            matches!(
                mine.check_link(&bad, ORIGIN, t0),
                Err(QrError::Malformed(_))
            ),
            "{bad}"
        );
    }
}

/// The QR image is a PNG that an independent reader (zbarimg, of zbar-tools) decodes back to
/// the device link.
#[test]
fn the_qr_png_decodes_to_the_device_link() {
    let t0 = OffsetDateTime::now_utc();
    let session = QrSession::start(t0).unwrap();
    let link = session.device_link(ORIGIN, "eng", t0 + Duration::seconds(3));
    let png = imza_portal::qr::qr_png(&link).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("qr.png");
    std::fs::write(&file, &png).unwrap();
    assert_eq!(imza_testdata::tools::decode_qr(&file), [link]);
}

#[test]
fn a_links_origin_is_what_comes_before_the_path() {
    use imza_portal::qr::link_origin;
    let session = QrSession::start(OffsetDateTime::now_utc()).unwrap();
    let link = session.device_link(ORIGIN, "aze", OffsetDateTime::now_utc());
    assert_eq!(link_origin(&link).unwrap(), ORIGIN);
    for bad in [
        "ftp://portal.gov.az/qr/v1?x=1",
        "https://portal.gov.az/other?x=1",
        "https:///qr/v1?x=1",
        "https://user@evil.example/x/qr/v1?x=1",
    ] {
        assert!(link_origin(bad).is_err(), "{bad}");
    }
    assert!(link_origin(&format!("{ORIGIN}/qr/v1?{}", "a".repeat(600))).is_err());
}

#[test]
fn the_answer_digest_binds_origin_token_and_challenge() {
    use imza_portal::qr::answer_digest;
    let base = answer_digest(ORIGIN, "token", &[1; 32]);
    assert_eq!(base, answer_digest(ORIGIN, "token", &[1; 32]));
    assert_ne!(
        base,
        answer_digest("https://portal.gov.az.evil.example", "token", &[1; 32])
    );
    assert_ne!(base, answer_digest(ORIGIN, "tokem", &[1; 32]));
    assert_ne!(base, answer_digest(ORIGIN, "token", &[2; 32]));
}

#[test]
fn an_answer_may_carry_a_link_up_to_the_answer_window_old_but_no_older() {
    use imza_portal::qr::ANSWER_WINDOW_SECONDS;
    let t0 = OffsetDateTime::now_utc();
    let session = QrSession::start(t0).unwrap();
    let link = session.device_link(ORIGIN, "aze", t0);
    let late = t0 + Duration::seconds(ANSWER_WINDOW_SECONDS);
    assert!(matches!(
        session.check_link(&link, ORIGIN, late),
        Err(QrError::Stale { .. })
    ));
    session
        .check_link_within(&link, ORIGIN, late, ANSWER_WINDOW_SECONDS)
        .unwrap();
    assert!(matches!(
        session.check_link_within(
            &link,
            ORIGIN,
            late + Duration::seconds(1),
            ANSWER_WINDOW_SECONDS
        ),
        Err(QrError::Stale { .. })
    ));
}
