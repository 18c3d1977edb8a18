//! Harness for end-to-end tests: a fresh data directory, the real `imza` binary, and the
//! independent tools (openssl, pkilint from the project's .venv, sqlite3) run as processes.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const ROOT_SUBJECT: &str = "CN=AZ Root CA,O=Milli Sertifikat Xidmətləri Mərkəzi,C=AZ";
pub const CITIZENS_SUBJECT: &str = "CN=AZ Citizens CA,O=Milli Sertifikat Xidmətləri Mərkəzi,C=AZ";
/// The subject of the CA the tests' phones get their certificates from ([`init_mobile_args`]).
pub const MOBILE_CA_SUBJECT: &str =
    "CN=AZ Mobile Signature CA,O=Milli Sertifikat Xidmətləri Mərkəzi,C=AZ";
/// A public-style base URL: ETSI lints refuse internal names such as 127.0.0.1 in CDP/AIA.
pub const BASE_URL: &str = "http://pki.e-imza.az";

pub struct TestPki {
    pub dir: tempfile::TempDir,
    /// The store on PostgreSQL instead of the data directory's SQLite file.
    pub postgres: Option<PgStore>,
}

/// A store on a database of the test binary's PostgreSQL cluster. Commands get it as
/// IMZA_STORE (no password) and PGPASSWORD, as an operator would set them.
pub struct PgStore {
    pub cluster: &'static imza_testdata::postgres::PgCluster,
    pub database: String,
}

impl PgStore {
    pub fn url(&self) -> String {
        self.cluster.url_without_password(&self.database)
    }
}

impl TestPki {
    pub fn new() -> TestPki {
        TestPki {
            dir: tempfile::tempdir().expect("tempdir"),
            postgres: None,
        }
    }

    /// A PKI whose store is a new empty database on the shared PostgreSQL cluster.
    pub fn on_postgres() -> TestPki {
        TestPki::on_cluster(imza_testdata::postgres::PgCluster::shared())
    }

    /// A PKI whose store is a new empty database on `cluster` (one of a test's own, for a test
    /// that stops and starts the server).
    pub fn on_cluster(cluster: &'static imza_testdata::postgres::PgCluster) -> TestPki {
        TestPki {
            dir: tempfile::tempdir().expect("tempdir"),
            postgres: Some(PgStore {
                cluster,
                database: cluster.create_database(),
            }),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn imza(&self, args: &[&str]) -> Output {
        self.imza_env(args, &[])
    }

    pub fn imza_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imza"));
        cmd.arg("--data-dir").arg(self.data_dir()).args(args);
        if let Some(pg) = &self.postgres {
            cmd.env("IMZA_STORE", pg.url())
                .env("PGPASSWORD", pg.cluster.password());
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run imza")
    }

    /// Runs imza and insists on success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_env(args, &[])
    }

    pub fn ok_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.imza_env(args, env);
        assert!(
            out.status.success(),
            "imza {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Root → citizens with software keys and the public-style base URL.
    pub fn with_root_and_citizens() -> TestPki {
        TestPki::with_root_and_citizens_at(BASE_URL)
    }

    /// Root (P-384) → citizens with software keys, `base_url` in the URLs they write into
    /// certificates (CDP, AIA): e.g. `http://127.0.0.1:PORT` for an `imza serve` that
    /// [`Server::start_on`] then starts on that port.
    pub fn with_root_and_citizens_at(base_url: &str) -> TestPki {
        TestPki::new().and_root_and_citizens(base_url)
    }

    /// [`TestPki::with_root_and_citizens`] on a new PostgreSQL database.
    pub fn on_postgres_with_root_and_citizens() -> TestPki {
        TestPki::on_postgres().and_root_and_citizens(BASE_URL)
    }

    /// This store with a root (P-384) and citizens CA, `base_url` in their URLs.
    fn and_root_and_citizens(self, base_url: &str) -> TestPki {
        let pki = self.and_root(base_url);
        pki.ok(&init_citizens_args(&[]));
        pki
    }

    /// A root CA alone (P-384, software key), `base_url` in its URLs.
    pub fn with_root_at(base_url: &str) -> TestPki {
        TestPki::new().and_root(base_url)
    }

    /// This store with a root CA (P-384, software key), `base_url` in its URLs.
    fn and_root(self, base_url: &str) -> TestPki {
        self.ok(&init_root_args(&[
            "--key",
            "ec-p384",
            "--base-url",
            base_url,
        ]));
        self
    }

    /// `imza ca issue --ca CA --profile PROFILE --subject SUBJECT --new-key ec-p256 EXTRA...`
    /// with the key and certificate written to the PKCS#12 file `p12` under the password
    /// `password` (passed in the environment variable `password_env`) and the certificate to
    /// `cert`.
    pub fn issue_p12(
        &self,
        (ca, profile, subject): (&str, &str, &str),
        p12: &Path,
        cert: &Path,
        (password_env, password): (&str, &str),
        extra: &[&str],
    ) -> String {
        let mut args = issue_args(
            ca,
            profile,
            &[
                "--subject",
                subject,
                "--new-key",
                "ec-p256",
                "--p12-out",
                p12.to_str().expect("path"),
                "--p12-pass-env",
                password_env,
                "--out",
                cert.to_str().expect("path"),
            ],
        );
        args.extend_from_slice(extra);
        self.ok_env(&args, &[(password_env, password)])
    }

    /// Runs imza and insists on exit status `code`, returning stderr.
    pub fn exits(&self, args: &[&str], env: &[(&str, &str)], code: i32) -> String {
        let out = self.imza_env(args, env);
        let message = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(code),
            "imza {args:?}: expected exit {code}: {message}"
        );
        message
    }

    /// Writes the CA's certificate to `NAME.pem` in the temp dir and returns the path.
    pub fn ca_pem(&self, ca: &str) -> PathBuf {
        let path = self.path(&format!("{ca}.pem"));
        std::fs::write(&path, self.ok(&["ca", "cert", "--ca", ca])).expect("write CA cert");
        path
    }

    /// A CSR made by OpenSSL for a fresh P-256 key, written to `name.csr`.
    pub fn csr(&self, name: &str, subject: &[(&str, &str)]) -> PathBuf {
        let key = imza_testdata::csr::p256_key();
        let path = self.path(&format!("{name}.csr"));
        std::fs::write(&path, imza_testdata::csr::csr_der(&key, subject)).expect("write CSR");
        path
    }

    /// A certificate for [`CITIZEN`] under the citizens CA with `profile`, from the CSR
    /// `NAME.csr`, written to `NAME.pem`; returns that path.
    pub fn issue_citizen(&self, profile: &str, name: &str) -> PathBuf {
        let csr = self.csr(name, CITIZEN);
        let cert = self.path(&format!("{name}.pem"));
        self.issue("citizens", profile, &csr, &cert, &[]);
        cert
    }

    /// `imza portal code issue --national-id ID --json`: what it printed.
    pub fn portal_code(&self, national_id: &str) -> serde_json::Value {
        let out = self.ok(&PORTAL_CODE_ISSUE.map(|a| if a.is_empty() { national_id } else { a }));
        serde_json::from_str(&out).expect("--json prints JSON")
    }

    /// A logical snapshot of the store (every table's rows) plus the key directory listing.
    /// On PostgreSQL every table's rows, sorted (sequence positions are not state: a refused
    /// insert may use a number up, as PostgreSQL's sequences are not transactional).
    pub fn snapshot(&self) -> String {
        let db = self.data_dir().join("imza.db");
        let dump = if let Some(pg) = &self.postgres {
            let tables = pg.cluster.psql(
                &pg.database,
                "SELECT string_agg(table_name, ' ' ORDER BY table_name) \
                 FROM information_schema.tables WHERE table_schema = 'public'",
            );
            let mut dump = String::new();
            for table in tables.split_whitespace() {
                dump.push_str(&format!("== {table}\n"));
                dump.push_str(&pg.cluster.psql(
                    &pg.database,
                    &format!("SELECT t::text FROM {table} t ORDER BY 1"),
                ));
                dump.push('\n');
            }
            dump.into_bytes()
        } else if db.exists() {
            run("sqlite3", &[db.to_str().expect("path"), ".dump"]).stdout
        } else {
            Vec::new()
        };
        let mut keys: Vec<String> = std::fs::read_dir(self.data_dir().join("keys"))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        format!("{}\nkeys: {keys:?}", String::from_utf8_lossy(&dump))
    }

    pub fn serials(&self, ca: &str) -> Vec<String> {
        let list: serde_json::Value =
            serde_json::from_str(&self.ok(&["ca", "list", "--ca", ca, "--json"])).expect("json");
        list.as_array()
            .expect("array")
            .iter()
            .map(|c| c["serial"].as_str().expect("serial").to_string())
            .collect()
    }
}

pub const CITIZEN: &[(&str, &str)] = &[
    ("C", "AZ"),
    ("serialNumber", "PNOAZ-5ZK7T2Q"),
    ("SN", "Əliyev"),
    ("GN", "Günay"),
    ("CN", "Əliyev Günay Şəmsi oğlu"),
];

/// `imza portal code issue --national-id ID --json`, the empty slot for the ID.
const PORTAL_CODE_ISSUE: [&str; 6] = ["portal", "code", "issue", "--national-id", "", "--json"];

/// `imza --data-dir DATA_DIR portal code issue --national-id ID --json`: what it printed (a
/// one-time access code, as a service centre prints it, under `code`).
pub fn portal_code(data_dir: &Path, national_id: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_imza"))
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "portal",
            "code",
            "issue",
            "--national-id",
            national_id,
            "--json",
        ])
        .output()
        .expect("imza portal code issue");
    assert!(
        out.status.success(),
        "imza portal code issue: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

/// `n` CSRs of fresh P-256 keys (made with OpenSSL in this process) in a new directory.
pub fn citizen_csrs(pki: &TestPki, name: &str, n: usize, offset: usize) -> PathBuf {
    use rayon::prelude::*;
    let dir = pki.path(name);
    std::fs::create_dir(&dir).unwrap();
    (0..n).into_par_iter().for_each(|i| {
        let key = imza_testdata::csr::p256_key();
        let subject = imza_testdata::csr::citizen_subject(offset + i);
        let subject: Vec<(&str, &str)> = subject.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let der = imza_testdata::csr::csr_der(&key, &subject);
        std::fs::write(dir.join(format!("c{:06}.der", offset + i)), der).unwrap();
    });
    dir
}

pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (run `make test`, which installs it): {e}")
        })
}

/// What `openssl ocsp -no_nonce` says (stdout and stderr) of `cert`, issued by `issuer` under
/// `root`, asking the responder at `{base}/ocsp`; `extra` arguments after.
pub fn openssl_ocsp(base: &str, issuer: &Path, root: &Path, cert: &Path, extra: &[&str]) -> String {
    let url = format!("{base}/ocsp");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let (issuer, root, cert) = (path(issuer), path(root), path(cert));
    let mut args = vec![
        "ocsp",
        "-issuer",
        &issuer,
        "-cert",
        &cert,
        "-url",
        &url,
        "-CAfile",
        &root,
        "-no_nonce",
    ];
    args.extend_from_slice(extra);
    let out = run("openssl", &args);
    format!("{}{}", stdout(&out), stderr(&out))
}

/// A pkilint command from the project's venv (or PATH).
pub fn pkilint(tool: &str) -> String {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.venv/bin")
        .join(tool);
    if venv.exists() {
        venv.to_string_lossy().into_owned()
    } else {
        tool.to_string()
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl TestPki {
    /// `imza ca issue --ca CA --profile PROFILE --csr CSR --out OUT EXTRA...`, insisting on success.
    pub fn issue(&self, ca: &str, profile: &str, csr: &Path, out: &Path, extra: &[&str]) -> String {
        let mut args = issue_csr_args(ca, profile, csr, out);
        args.extend_from_slice(extra);
        self.ok(&args)
    }
}

impl TestPki {
    /// A `tls-server` certificate from `ca` for 127.0.0.1 (a new P-256 key, mode 0600):
    /// (the certificate with its CA as a chain, the key) — what `imza serve --tls-cert
    /// --tls-key` takes.
    pub fn tls_server_certificate(&self, ca: &str) -> (PathBuf, PathBuf) {
        let key = imza_testdata::csr::p256_key();
        let (key_path, csr, cert) = (
            self.path("tls.key"),
            self.path("tls.csr"),
            self.path("tls.pem"),
        );
        std::fs::write(&key_path, key.private_key_to_pem_pkcs8().expect("PEM")).expect("key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let out = run(
            "openssl",
            &[
                "req",
                "-new",
                "-key",
                key_path.to_str().expect("path"),
                "-subj",
                "/CN=127.0.0.1/O=Test State/C=AZ",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-outform",
                "DER",
                "-out",
                csr.to_str().expect("path"),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        self.issue(ca, "tls-server", &csr, &cert, &[]);
        let chain = self.path("tls-chain.pem");
        let mut pem = std::fs::read(&cert).expect("certificate");
        pem.extend(std::fs::read(self.ca_pem(ca)).expect("CA certificate"));
        std::fs::write(&chain, pem).expect("chain");
        (chain, key_path)
    }
}

/// `ca init --name root --subject ROOT_SUBJECT EXTRA...`.
pub fn init_root_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["ca", "init", "--name", "root", "--subject", ROOT_SUBJECT];
    args.extend_from_slice(extra);
    args
}

/// `ca init --name citizens --parent root --subject CITIZENS_SUBJECT EXTRA...`.
pub fn init_citizens_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    init_under_root_args("citizens", CITIZENS_SUBJECT, extra)
}

/// `ca init --name mobile --parent root --subject MOBILE_CA_SUBJECT`: the phones' CA.
pub fn init_mobile_args() -> Vec<&'static str> {
    init_under_root_args("mobile", MOBILE_CA_SUBJECT, &[])
}

/// `ca init --name NAME --parent root --subject SUBJECT EXTRA...`.
pub fn init_under_root_args<'a>(
    name: &'a str,
    subject: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "ca",
        "init",
        "--name",
        name,
        "--parent",
        "root",
        "--subject",
        subject,
    ];
    args.extend_from_slice(extra);
    args
}

/// `--pkcs11-module MODULE --pkcs11-token TOKEN --pkcs11-pin-env PIN_ENV`: a key on a token.
pub fn pkcs11_args<'a>(module: &'a str, token: &'a str, pin_env: &'a str) -> [&'a str; 6] {
    [
        "--pkcs11-module",
        module,
        "--pkcs11-token",
        token,
        "--pkcs11-pin-env",
        pin_env,
    ]
}

/// `ca issue --ca CA --profile PROFILE REST...`.
pub fn issue_args<'a>(ca: &'a str, profile: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["ca", "issue", "--ca", ca, "--profile", profile];
    args.extend_from_slice(rest);
    args
}

/// `ca issue --ca CA --profile PROFILE --csr CSR --out OUT`.
pub fn issue_csr_args<'a>(
    ca: &'a str,
    profile: &'a str,
    csr: &'a Path,
    out: &'a Path,
) -> Vec<&'a str> {
    issue_args(
        ca,
        profile,
        &[
            "--csr",
            csr.to_str().expect("path"),
            "--out",
            out.to_str().expect("path"),
        ],
    )
}

/// `card enroll CARD... --ca citizens --profile PROFILE --subject SUBJECT --pin-env CARD_PIN
/// EXTRA...`, CARD being `--reader NAME` or `--token LABEL --pkcs11-module MODULE`.
pub fn card_enroll_args<'a>(
    card: &[&'a str],
    profile: &'a str,
    subject: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["card", "enroll"];
    args.extend_from_slice(card);
    args.extend([
        "--ca",
        "citizens",
        "--profile",
        profile,
        "--subject",
        subject,
        "--pin-env",
        "CARD_PIN",
    ]);
    args.extend_from_slice(extra);
    args
}

/// `ca revoke --ca CA --serial SERIAL EXTRA...`.
pub fn revoke_args<'a>(ca: &'a str, serial: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["ca", "revoke", "--ca", ca, "--serial", serial];
    args.extend_from_slice(extra);
    args
}

/// `sign --in IN --out OUT --key KEY --cert CERT EXTRA...`: a signature with a key file.
pub fn sign_args<'a>(
    input: &'a str,
    out: &'a str,
    key: &'a str,
    cert: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "sign", "--in", input, "--out", out, "--key", key, "--cert", cert,
    ];
    args.extend_from_slice(extra);
    args
}

/// `openssl KIND [-inform DER] -in FILE -noout WHAT...`: what openssl printed on stdout.
pub fn openssl_show(kind: &str, file: &Path, der: bool, what: &[&str]) -> String {
    let mut args = vec![kind];
    if der {
        args.extend(["-inform", "DER"]);
    }
    args.extend(["-in", file.to_str().expect("path"), "-noout"]);
    args.extend_from_slice(what);
    stdout(&run("openssl", &args))
}

/// A citizen's phone for `imza mobile register`: its number, the holder's national id (FIN)
/// and name.
pub struct Phone<'a> {
    pub number: &'a str,
    pub national_id: &'a str,
    pub given_name: &'a str,
    pub surname: &'a str,
}

impl TestPki {
    /// `imza mobile register` of `phone` under the "mobile" CA with the signature service at
    /// `mss_url`, its wallet in `phone_dir` under the PIN in `env`'s PHONE_PIN, `extra`
    /// arguments after (`--json`, a PKCS#11 token), insisting on success: what it printed.
    pub fn register_phone(
        &self,
        phone: &Phone,
        mss_url: &str,
        phone_dir: &Path,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> String {
        let mut args = vec![
            "mobile",
            "register",
            "--phone",
            phone.number,
            "--national-id",
            phone.national_id,
            "--given-name",
            phone.given_name,
            "--surname",
            phone.surname,
            "--ca",
            "mobile",
            "--pin-env",
            "PHONE_PIN",
            "--mss-url",
            mss_url,
            "--phone-dir",
            phone_dir.to_str().expect("path"),
        ];
        args.extend_from_slice(extra);
        self.ok_env(&args, env)
    }
}

impl TestPki {
    /// `imza ca revoke --ca CA --serial SERIAL EXTRA...`, insisting on success.
    pub fn revoke(&self, ca: &str, serial: &str, extra: &[&str]) -> String {
        self.ok(&revoke_args(ca, serial, extra))
    }

    /// `imza ca crl --ca CA --out OUT`, insisting on success.
    pub fn crl(&self, ca: &str, out: &Path) -> String {
        self.ok(&[
            "ca",
            "crl",
            "--ca",
            ca,
            "--out",
            out.to_str().expect("path"),
        ])
    }
}

impl TestPki {
    /// `imza verify SIGNATURE --content CONTENT --trust root.pem --crl ... --json` with CRLs of
    /// the root and citizens CAs issued just now (`env` carries a CA key's PIN if it is on a
    /// token): the exit status and the report.
    pub fn verify_with_fresh_crls(
        &self,
        signature: &Path,
        content: &Path,
        env: &[(&str, &str)],
    ) -> (i32, serde_json::Value) {
        self.verify_with_fresh_crls_of(&["root", "citizens"], signature, content, env)
    }

    /// [`TestPki::verify_with_fresh_crls`] with fresh CRLs of the CAs `cas`.
    pub fn verify_with_fresh_crls_of(
        &self,
        cas: &[&str],
        signature: &Path,
        content: &Path,
        env: &[(&str, &str)],
    ) -> (i32, serde_json::Value) {
        let root = self.ca_pem("root");
        let mut args = vec![
            "verify".to_string(),
            signature.to_str().expect("path").into(),
            "--trust".into(),
            root.to_str().expect("path").into(),
        ];
        // A signed PDF holds its content.
        let pdf = std::fs::read(signature).is_ok_and(|bytes| bytes.starts_with(b"%PDF-"));
        if !pdf {
            args.extend(["--content".into(), content.to_str().expect("path").into()]);
        }
        for ca in cas {
            let crl = self.path(&format!("{ca}-fresh.crl"));
            let _ = std::fs::remove_file(&crl);
            self.ok_env(
                &[
                    "ca",
                    "crl",
                    "--ca",
                    ca,
                    "--out",
                    crl.to_str().expect("path"),
                ],
                env,
            );
            args.extend(["--crl".into(), crl.to_str().expect("path").into()]);
        }
        args.push("--json".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.imza_env(&args, env);
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stderr(&out)));
        (out.status.code().unwrap_or(-1), report)
    }
}

/// The indication (TOTAL_PASSED, ...) of the first signature in an `imza verify --json` report.
pub fn first_indication(report: &serde_json::Value) -> String {
    report["signatures"][0]["indication"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `openssl cms -verify -binary -inform DER -in SIGNATURE -content CONTENT -CAfile ROOT
/// -purpose any -out OUT`.
pub fn openssl_cms_verify(signature: &Path, content: &Path, root: &Path, out: &Path) -> Output {
    let s = |p: &Path| p.to_str().expect("path").to_string();
    let (signature, content, root, out) = (s(signature), s(content), s(root), s(out));
    run(
        "openssl",
        &[
            "cms", "-verify", "-binary", "-inform", "DER", "-in", &signature, "-content", &content,
            "-CAfile", &root, "-purpose", "any", "-out", &out,
        ],
    )
}

/// `openssl verify [-crl_check -CRLfile CRL] -CAfile ROOT -untrusted ISSUING CERT`.
pub fn openssl_verify(root: &Path, issuing: &Path, cert: &Path, crl: Option<&Path>) -> Output {
    let s = |p: &Path| p.to_str().expect("path").to_string();
    let mut args: Vec<String> = vec!["verify".into()];
    if let Some(crl) = crl {
        args.extend(["-crl_check".into(), "-CRLfile".into(), s(crl)]);
    }
    args.extend([
        "-CAfile".into(),
        s(root),
        "-untrusted".into(),
        s(issuing),
        s(cert),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("openssl", &args)
}

/// A loopback port nothing listens on now (bound by the OS, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A running `imza serve` on a free loopback port, stopped when dropped (also when a test
/// fails and unwinds).
pub struct Server {
    child: std::process::Child,
    pub base: String,
}

impl Server {
    pub fn start(pki: &TestPki) -> Server {
        Server::start_with(pki, &[])
    }

    /// `imza serve` with extra arguments (e.g. `--config FILE`).
    pub fn start_with(pki: &TestPki, extra: &[&str]) -> Server {
        Server::start_on(pki, free_port(), extra)
    }

    /// `imza serve` on `port`: one chosen (with [`free_port`]) before the CAs were made, so
    /// that the URLs they write into certificates point at it.
    pub fn start_on(pki: &TestPki, port: u16, extra: &[&str]) -> Server {
        let listen = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_imza"));
        command
            .arg("--data-dir")
            .arg(pki.data_dir())
            .args(["serve", "--listen", &listen])
            .args(extra);
        if let Some(pg) = &pki.postgres {
            command
                .env("IMZA_STORE", pg.url())
                .env("PGPASSWORD", pg.cluster.password());
        }
        Server::spawn(command, &listen)
    }

    /// `imza serve --roles portal` over HTTPS on a free loopback port, with a tls-server
    /// certificate from the citizens CA for 127.0.0.1, asking browsers for a device
    /// certificate under root or citizens (`--tls-client-cas`); `base` is its `https://` URL.
    pub fn portal_asking_for_device_certificates(pki: &TestPki) -> Server {
        let (chain, key) = pki.tls_server_certificate("citizens");
        let client_cas = pki.path("client-cas.pem");
        let mut pem = std::fs::read(pki.ca_pem("root")).expect("root");
        pem.extend(std::fs::read(pki.ca_pem("citizens")).expect("citizens CA"));
        std::fs::write(&client_cas, pem).expect("client CAs");
        let client_cas = client_cas.to_str().expect("path");
        Server::portal(pki, (&chain, &key), &["--tls-client-cas", client_cas], &[])
    }

    /// `imza serve --roles portal EXTRA...` over HTTPS with `tls` (a chain and its key, as
    /// [`TestPki::tls_server_certificate`] makes them) on a free port, with `env` (the seal's
    /// PIN, the signature service's API key): the portal as a public node runs it. Its `base`
    /// is `https://127.0.0.1:PORT`.
    pub fn portal(
        pki: &TestPki,
        tls: (&Path, &Path),
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_imza"));
        command
            .arg("--data-dir")
            .arg(pki.data_dir())
            .args(["serve", "--listen", &listen, "--roles", "portal"])
            .arg("--tls-cert")
            .arg(tls.0)
            .arg("--tls-key")
            .arg(tls.1)
            .args(extra)
            .envs(env.iter().copied());
        let mut server = Server::spawn(command, &listen);
        server.base = format!("https://{listen}");
        server
    }

    /// Runs `command` (an `imza serve` listening on `listen`, perhaps started through a shell
    /// that sets limits first) and waits until it listens.
    pub fn spawn(mut command: Command, listen: &str) -> Server {
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start imza serve");
        let server = Server {
            child,
            base: format!("http://{listen}"),
        };
        // Start-up issues the OCSP responder certificates first: allow up to 20 s.
        for _ in 0..400 {
            if std::net::TcpStream::connect(listen).is_ok() {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("imza serve did not start on {listen}");
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `curl` GET: (HTTP status, body).
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let out = run(
            "curl",
            &[
                "-s",
                "-w",
                "\n%{http_code}",
                &format!("{}{path}", self.base),
            ],
        );
        let mut body = out.stdout;
        let split = body.iter().rposition(|b| *b == b'\n').expect("status line");
        let status = String::from_utf8_lossy(&body[split + 1..])
            .trim()
            .parse()
            .expect("status");
        body.truncate(split);
        (status, body)
    }
}

/// What `curl` got back: status, raw response headers, body.
pub struct HttpResponse {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

impl Server {
    /// `curl` with `method` on `path`, extra headers, and the body from a file (if any).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&Path>,
    ) -> HttpResponse {
        let dir = tempfile::tempdir().expect("tempdir");
        let head = dir.path().join("headers");
        let out = dir.path().join("body");
        let url = format!("{}{path}", self.base);
        let mut args: Vec<String> = vec![
            "-s".into(),
            "-X".into(),
            method.into(),
            "-D".into(),
            head.to_str().expect("path").into(),
            "-o".into(),
            out.to_str().expect("path").into(),
            "-w".into(),
            "%{http_code}".into(),
        ];
        for h in headers {
            args.extend(["-H".into(), (*h).to_string()]);
        }
        if let Some(file) = body {
            args.extend([
                "--data-binary".into(),
                format!("@{}", file.to_str().expect("path")),
            ]);
        }
        args.push(url);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let result = run("curl", &args);
        HttpResponse {
            status: stdout(&result).trim().parse().unwrap_or(0),
            headers: std::fs::read_to_string(&head).unwrap_or_default(),
            body: std::fs::read(&out).unwrap_or_default(),
        }
    }

    /// POST `body` with `Content-Type: content_type`.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> HttpResponse {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), body).expect("write body");
        self.request(
            "POST",
            path,
            &[&format!("Content-Type: {content_type}")],
            Some(file.path()),
        )
    }
}

impl Server {
    /// Stops the server as an operator would (SIGTERM) and returns its exit status and how
    /// long it took to exit (killed after 20 s).
    pub fn terminate(&mut self) -> (Option<i32>, std::time::Duration) {
        let started = std::time::Instant::now();
        run("kill", &["-TERM", &self.child.id().to_string()]);
        while started.elapsed() < std::time::Duration::from_secs(20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status.code(), started.elapsed());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        (None, started.elapsed())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every command that opens a store, each with arguments it would otherwise accept.
pub fn store_commands(out: &str, csr: &str, csr_dir: &str) -> Vec<Vec<String>> {
    let commands: Vec<Vec<&str>> = vec![
        vec!["audit", "verify"],
        vec!["audit", "verify", "--json"],
        vec!["ca", "list"],
        vec!["ca", "list", "--ca", "citizens"],
        vec!["ca", "show", "--ca", "citizens", "--serial", "01"],
        vec!["ca", "cert", "--ca", "citizens"],
        issue_csr_args_str("citizens", "citizen-sign", csr, out),
        issue_args(
            "citizens",
            "citizen-sign",
            &["--csr-dir", csr_dir, "--out-dir", out],
        ),
        revoke_args("citizens", "01", &[]),
        vec!["ca", "crl", "--ca", "citizens", "--out", out],
        init_citizens_args(&[]),
        vec!["tsa", "init", "--ca", "citizens"],
        vec!["tsa", "list"],
        vec!["tsa", "cert", "--name", "tsa"],
        vec!["ocsp", "init", "--ca", "citizens"],
        vec!["ocsp", "list"],
        vec!["mobile", "rp", "add", "--name", "mygov.az"],
        vec!["mobile", "rp", "list"],
        vec![
            "mobile",
            "register",
            "--phone",
            "+994501234567",
            "--national-id",
            "1AB2C3D",
            "--given-name",
            "Aysel",
            "--surname",
            "Mammadova",
            "--ca",
            "mobile",
            "--pin-env",
            "PHONE_PIN",
            "--phone-dir",
            out,
        ],
        card_enroll_args(
            &[
                "--token",
                "card",
                "--pkcs11-module",
                "/nonexistent/module.so",
            ],
            "citizen-sign",
            "CN=X,C=AZ",
            &[],
        ),
        vec!["serve", "--listen", "127.0.0.1:0"],
    ];
    commands
        .into_iter()
        .map(|c| c.into_iter().map(str::to_string).collect())
        .collect()
}

fn issue_csr_args_str<'a>(
    ca: &'a str,
    profile: &'a str,
    csr: &'a str,
    out: &'a str,
) -> Vec<&'a str> {
    issue_args(ca, profile, &["--csr", csr, "--out", out])
}
