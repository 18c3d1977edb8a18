//! A real browser for the portal's tests: Debian's headless Chromium driven over WebDriver
//! (`chromedriver`, through the `fantoccini` client), trusting only the roots a test gives it,
//! with screenshots kept as test artefacts and QR codes read back from their pixels
//! (`zbarimg`).
//!
//! One browser per test binary: [`Browser::start`] launches chromedriver and one Chromium
//! session; tests share it through a `Mutex` and call [`Browser::fresh`] first (no cookies,
//! a blank page). A watchdog shell kills chromedriver, Chromium and their home directory when
//! the test process ends, whether it passed, failed or was killed, since a `static` is never
//! dropped.
//!
//! The browser's home directory holds its NSS database (`$HOME/.pki/nssdb`), where the roots
//! are trusted with `certutil`: no `--ignore-certificate-errors`, which would hide exactly what
//! an HTTPS test must see.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// The texts of the QR codes in a PNG image (a screenshot), as `zbarimg` reads them.
pub use imza_testenv::tools::decode_qr;

/// Chromium's binary (Debian's `/usr/bin/chromium` is a wrapper script around it).
const CHROMIUM: &str = "/usr/lib/chromium/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Where Debian's Chromium reads mandatory policies at start.
const POLICIES: &str = "/etc/chromium/policies/managed";

/// How long a wait for an element or a text gives up after.
pub const WAIT: Duration = Duration::from_secs(30);

/// A headless Chromium session driven over WebDriver.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Client,
    driver: Child,
    home: PathBuf,
    /// The client-certificate policy file written for this browser, removed with it.
    policy: Option<PathBuf>,
    artefacts: PathBuf,
}

/// A client certificate for [`Browser::start_with_client_certificate`].
pub struct ClientCertificate {
    /// The certificate and its key (PKCS#12).
    pub pkcs12: PathBuf,
    pub password: String,
    /// The site (`https://127.0.0.1:PORT`) it is presented to.
    pub site: String,
}

impl Browser {
    /// Whether Chromium, chromedriver and NSS's `certutil` are installed (`scripts/setup.sh`
    /// installs them).
    pub fn is_available() -> bool {
        [
            CHROMIUM,
            CHROMEDRIVER,
            "/usr/bin/certutil",
            "/usr/bin/zbarimg",
        ]
        .iter()
        .all(|p| Path::new(p).exists())
    }

    /// Starts chromedriver and a headless Chromium that trusts `trusted_roots` (PEM files) for
    /// HTTPS, saving screenshots under `artefacts`. Panics (a test set-up failure) when it
    /// cannot.
    pub fn start(trusted_roots: &[&Path], artefacts: &Path) -> Browser {
        Browser::start_with(trusted_roots, artefacts, None)
    }

    /// [`Browser::start`], with a client certificate in the browser's NSS database that it
    /// presents, without asking, to the sites the certificate is for — as a citizen's device
    /// whose mobile authentication certificate is installed. Chromium chooses a client
    /// certificate without a dialog only under the `AutoSelectCertificateForUrls` policy, read
    /// from `/etc/chromium/policies/managed/` at start: a file naming only `certificate.site`
    /// is written there, and removed with the browser's other files.
    pub fn start_with_client_certificate(
        trusted_roots: &[&Path],
        artefacts: &Path,
        certificate: &ClientCertificate,
    ) -> Browser {
        Browser::start_with(trusted_roots, artefacts, Some(certificate))
    }

    fn start_with(
        trusted_roots: &[&Path],
        artefacts: &Path,
        client: Option<&ClientCertificate>,
    ) -> Browser {
        let home = tempfile::Builder::new()
            .prefix("imza-browser-")
            .tempdir()
            .expect("temporary directory")
            .keep();
        let nssdb = home.join(".pki/nssdb");
        std::fs::create_dir_all(&nssdb).expect("NSS database directory");
        let db = format!("sql:{}", nssdb.display());
        run("certutil", &["-N", "-d", &db, "--empty-password"]);
        for (i, root) in trusted_roots.iter().enumerate() {
            let nickname = format!("imza test root {i}");
            let root = root.display().to_string();
            run(
                "certutil",
                &["-A", "-d", &db, "-n", &nickname, "-t", "C,,", "-i", &root],
            );
        }
        std::fs::create_dir_all(artefacts).expect("artefacts directory");
        let mut policy = None;
        if let Some(client) = client {
            let pkcs12 = client.pkcs12.display().to_string();
            run(
                "pk12util",
                &["-i", &pkcs12, "-d", &db, "-W", &client.password],
            );
            let dir = Path::new(POLICIES);
            std::fs::create_dir_all(dir).expect("Chromium's policy directory");
            let file = dir.join(format!(
                "imza-test-{}-{}.json",
                std::process::id(),
                home.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("browser")
            ));
            let rule = json!({ "pattern": client.site, "filter": {} }).to_string();
            let body = json!({ "AutoSelectCertificateForUrls": [rule] }).to_string();
            std::fs::write(&file, body).expect("Chromium policy file");
            policy = Some(file);
        }

        let port = crate::postgres::free_port();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .env("HOME", &home)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver")
        };
        let profile_flag = format!("--user-data-dir={}/profile", home.display());
        let mut remove = vec![home.as_path()];
        remove.extend(policy.as_deref());
        clean_up_after_this_process(Some(driver.id()), Some(&profile_flag), &remove);

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let capabilities = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": false,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--window-size=1100,900",
                    "--lang=az",
                    profile_flag,
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let attempt = runtime.block_on(
                ClientBuilder::native()
                    .capabilities(capabilities.clone())
                    .connect(&url),
            );
            match attempt {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => panic!("chromedriver on {url}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        Browser {
            runtime,
            client,
            driver,
            home,
            policy,
            artefacts: artefacts.to_path_buf(),
        }
    }

    /// Runs one of fantoccini's futures to its end.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The WebDriver client, for what this facade lacks (with [`Browser::block_on`]).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// No cookies for `site` (WebDriver deletes the current page's cookies, so it goes there
    /// first) and a blank page: what each test starts from.
    pub fn fresh(&self, site: &str) {
        self.goto(site);
        self.block_on(self.client.delete_all_cookies())
            .expect("delete cookies");
        self.goto("about:blank");
    }

    pub fn goto(&self, url: &str) {
        self.block_on(self.client.goto(url))
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    pub fn current_url(&self) -> String {
        self.block_on(self.client.current_url())
            .expect("current URL")
            .to_string()
    }

    /// The page's HTML as the browser has it now.
    pub fn source(&self) -> String {
        self.block_on(self.client.source()).expect("page source")
    }

    /// Whether an element matches `css` now.
    pub fn has(&self, css: &str) -> bool {
        self.block_on(self.client.find(Locator::Css(css))).is_ok()
    }

    /// The visible text of the first element matching `css`, waiting up to [`WAIT`] for it.
    pub fn text(&self, css: &str) -> String {
        self.block_on(async {
            let element = self.find(css).await;
            element.text().await
        })
        .unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// Waits until the text of `css` contains `needle`; returns the text. Panics with what
    /// the page shows when it does not within [`WAIT`].
    pub fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.block_on(async {
                match self.client.find(Locator::Css(css)).await {
                    Ok(e) => e.text().await.ok(),
                    Err(_) => None,
                }
            });
            match now {
                Some(text) if text.contains(needle) => return text,
                _ if Instant::now() > deadline => panic!(
                    "{css} never showed {needle:?} (now {now:?}) on {}:\n{}",
                    self.current_url(),
                    self.source()
                ),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Types `text` into the first element matching `css`.
    pub fn fill(&self, css: &str, text: &str) {
        self.block_on(async {
            let element = self.find(css).await;
            element.clear().await?;
            element.send_keys(text).await
        })
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Clicks the first element matching `css`.
    pub fn click(&self, css: &str) {
        self.block_on(async { self.find(css).await.click().await })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Runs `script` in the page (its `arguments` are `args`) and returns what it returns.
    /// The portal's CSP does not stop WebDriver's scripts: they are not the page's.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.block_on(self.client.execute(script, args))
            .unwrap_or_else(|e| panic!("script: {e}"))
    }

    /// The browser's cookies for the current page: name, value, and whether each is Secure
    /// and HttpOnly.
    pub fn cookies(&self) -> Vec<Cookie> {
        self.block_on(self.client.get_all_cookies())
            .expect("cookies")
            .into_iter()
            .map(|c| Cookie {
                name: c.name().to_string(),
                value: c.value().to_string(),
                secure: c.secure().unwrap_or(false),
                http_only: c.http_only().unwrap_or(false),
                same_site: c.same_site().map(|s| format!("{s:?}")),
            })
            .collect()
    }

    /// Saves a screenshot of the page as `NAME.png` under the artefacts directory.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.block_on(self.client.screenshot()).expect("screenshot");
        let path = self.artefacts.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(e) if Instant::now() > deadline => {
                    panic!("no {css} on {}: {e}\n{}", self.current_url(), self.source())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.runtime.block_on(self.client.clone().close());
        let _ = Command::new("kill")
            // procps' kill needs `--` before a negative pid (a process group); without it the
            // group is taken for a signal and nothing is killed.
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.home);
        if let Some(policy) = &self.policy {
            let _ = std::fs::remove_file(policy);
        }
    }
}

/// A cookie as the browser holds it.
#[derive(Clone, Debug)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: Option<String>,
}

/// Once this test process is gone (passed, failed or killed): kills process group `group`
/// (when given), any process whose command line contains `pattern` (when given), and removes
/// `remove`. For what a test binary shares through a `static`, which is never dropped.
// The watchdog outlives this process by design: nobody is left to wait for it.
#[allow(clippy::zombie_processes)]
pub fn clean_up_after_this_process(group: Option<u32>, pattern: Option<&str>, remove: &[&Path]) {
    // dash's builtin kill (sh here) takes a negative pid after the signal directly and
    // refuses `--` ("Illegal number").
    let script = r#"
while kill -0 "$1" 2>/dev/null; do sleep 0.3; done
[ -n "$2" ] && kill -KILL "-$2" 2>/dev/null
[ -n "$IMZA_WATCHDOG_PATTERN" ] && pkill -KILL -f -- "$IMZA_WATCHDOG_PATTERN" 2>/dev/null
shift 2
rm -rf "$@"
"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("imza-test-watchdog")
        .arg(std::process::id().to_string())
        .arg(group.map(|g| g.to_string()).unwrap_or_default())
        // In the environment, not the arguments: pkill would match the watchdog itself.
        .env("IMZA_WATCHDOG_PATTERN", pattern.unwrap_or_default())
        .args(remove)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("watchdog shell");
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
