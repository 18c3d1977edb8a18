//! The cabinet's documents, checks and notices, and the download of a document's PDF, in
//! process: only the session of the citizen a document was issued to gets its PDF; everyone
//! else gets the same 404 as for no document at all.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use imza_core::clock::SystemClock;
use imza_portal::access_code::{issue, AccessCodePolicy};
use imza_portal::document::DocumentReference;
use imza_portal::http::{routes, Portal};
use imza_portal::session::csrf_token;
use imza_portal::store::{
    CheckChannel, DocumentKind, ExpiryNotice, PortalStore, SqlitePortalStore,
};
use imza_testdata::loopback::RouterClient;
use time::{Duration, OffsetDateTime};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

struct Site {
    _dir: tempfile::TempDir,
    store: Arc<SqlitePortalStore>,
    portal: Arc<Portal>,
    client: RouterClient,
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlitePortalStore::open(&dir.path().join("imza.db")).unwrap());
    let portal = Arc::new(Portal::new(
        Arc::clone(&store) as Arc<dyn PortalStore>,
        Arc::new(SystemClock),
    ));
    Site {
        _dir: dir,
        store,
        client: RouterClient::new(routes(Arc::clone(&portal))),
        portal,
    }
}

/// Logs the citizen with this national id in with an access code: the session cookie.
fn log_in(site: &Site, national_id: &str) -> String {
    let issued = issue(
        site.store.as_ref(),
        national_id,
        OffsetDateTime::now_utc(),
        &AccessCodePolicy::default(),
    )
    .unwrap();
    let page = site.client.get("/portal", &[]);
    let cookie = cookie_of(page.header("set-cookie").unwrap());
    let reply = site.client.post(
        "/portal/login/code",
        &[FORM, ("cookie", &format!("__Host-imza-session={cookie}"))],
        format!(
            "csrf={}&national_id={national_id}&code={}",
            csrf_token(&cookie),
            issued.code.replace(' ', "+")
        ),
    );
    assert_eq!(reply.status, 303, "{}", reply.text());
    cookie_of(reply.header("set-cookie").unwrap())
}

fn cookie_of(header: &str) -> String {
    header
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("__Host-imza-session="))
        .unwrap()
        .to_string()
}

#[test]
fn the_cabinet_lists_the_citizens_documents_checks_and_notices_and_only_they_download_the_pdf() {
    let site = site();
    let pdf = b"%PDF-1.7\n% Gunay's residence statement\n".to_vec();
    let mine = site
        .portal
        .register_document(DocumentKind::Residence, "PNOAZ-5ZK7T2Q", &pdf)
        .unwrap();
    let theirs = site
        .portal
        .register_document(DocumentKind::Employment, "PNOAZ-3HQ8M1X", b"%PDF-1.7 other")
        .unwrap();
    let reference = DocumentReference::parse(&mine.reference).unwrap();
    site.portal
        .record_check(&reference, Some("<b>Kapital Bank</b>"), CheckChannel::Api)
        .unwrap();
    site.portal
        .record_check(&reference, None, CheckChannel::Page)
        .unwrap();
    let unknown = DocumentReference::parse("ZZZZ-ZZZZ-ZZZZ").unwrap();
    assert!(site
        .portal
        .record_check(&unknown, None, CheckChannel::Page)
        .is_err());
    let now = OffsetDateTime::now_utc();
    let notice = ExpiryNotice {
        certificate: "citizens:1A2B".into(),
        threshold_days: 30,
        personal_code: "PNOAZ-5ZK7T2Q".into(),
        profile: "citizen-sign".into(),
        not_after: now + Duration::days(20),
        claimed_at: now,
        sent_at: None,
        emailed_to: None,
    };
    assert!(site
        .store
        .claim_notice(&notice, Duration::minutes(10))
        .unwrap());
    site.store
        .mark_notice_sent("citizens:1A2B", 30, now, Some("gunay.aliyeva@mygov.az"))
        .unwrap();

    let gunay = log_in(&site, "5ZK7T2Q");
    let cookie = format!("__Host-imza-session={gunay}");
    let html = site
        .client
        .get("/portal/cabinet?lang=eng", &[("cookie", &cookie)])
        .text();
    let section = |id: &str| {
        html.split(&format!("<table id=\"{id}\">"))
            .nth(1)
            .and_then(|rest| rest.split("</table>").next())
            .unwrap_or_else(|| panic!("no table {id}: {html}"))
            .to_string()
    };
    let documents = section("documents");
    assert!(html.contains("<h2>My documents</h2>"), "{html}");
    assert!(
        documents.contains(&format!("<td>{reference}</td><td>valid</td>"))
            && documents.contains(&format!(
                "<a href=\"/portal/documents/{}\">Download (PDF)</a>",
                reference.as_str()
            ))
            && documents.contains("Certificate of residence"),
        "{documents}"
    );
    assert!(!documents.contains(&theirs.reference), "{documents}");
    let checks = section("document-checks");
    assert!(html.contains("<h2>Who checked my documents</h2>"));
    assert!(
        checks.contains("&lt;b&gt;Kapital Bank&lt;/b&gt;</td><td>API</td>")
            && checks.contains("<td>not identified</td><td>verification page</td>"),
        "{checks}"
    );
    let notices = section("notices");
    assert!(
        notices.contains(
            "Your &quot;citizen-sign&quot; certificate (citizens:1A2B) expires within 30 days"
        ) && notices.contains("e-mailed to gunay.aliyeva@mygov.az"),
        "{notices}"
    );
    let aze = site
        .client
        .get("/portal/cabinet", &[("cookie", &cookie)])
        .text();
    assert!(
        aze.contains("Sənədlərim")
            && aze.contains("Sənədlərimi kim yoxlayıb")
            && aze.contains("Bildirişlər")
            && aze.contains("müəyyən edilməyib"),
        "{aze}"
    );

    // The PDF: to Günay's session, as an attachment, byte for byte.
    let download = site.client.get(
        &format!("/portal/documents/{}", reference.as_str()),
        &[("cookie", &cookie)],
    );
    assert_eq!(download.status, 200);
    assert_eq!(download.header("content-type"), Some("application/pdf"));
    assert_eq!(
        download.header("content-disposition"),
        Some(format!("attachment; filename=\"{reference}.pdf\"").as_str())
    );
    assert!(download.header("content-security-policy").is_some());
    assert_eq!(download.body, pdf);
    // Typed as on the paper, with dashes: the same document.
    let dashed = site.client.get(
        &format!("/portal/documents/{reference}"),
        &[("cookie", &cookie)],
    );
    assert_eq!(dashed.status, 200);

    // Rəşad's document to Günay, anyone's to no session, nonsense: one and the same 404.
    for (path, headers) in [
        (
            format!("/portal/documents/{}", theirs.reference),
            vec![("cookie", cookie.as_str())],
        ),
        (format!("/portal/documents/{}", reference.as_str()), vec![]),
        (
            "/portal/documents/ZZZZZZZZZZZZ".to_string(),
            vec![("cookie", cookie.as_str())],
        ),
        (
            "/portal/documents/%3Cscript%3E".to_string(),
            vec![("cookie", cookie.as_str())],
        ),
    ] {
        let reply = site.client.get(&path, &headers);
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.text(), "no such document\n", "{path}");
    }
}
