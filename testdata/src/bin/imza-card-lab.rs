//! Keeps a virtual PIV card in a virtual reader for benchmarks and demos:
//!
//!   imza-card-lab --state FILE [--pin-env VAR] [--provision-key ec-p256|rsa-2048]
//!
//! Starts pcscd with the test harness's virtual readers (`imza_testdata::card::CardLab`), leases
//! one reader and inserts a card whose state is read from FILE (a new card when FILE does not
//! exist) and written back to FILE after every change (PIN tries, keys, certificates).
//!
//!   --state FILE          the card's state file (JSON, mode 0600; it holds the card's keys)
//!   --pin-env VAR         a new card's PIN is the value of the environment variable VAR
//!                         (6 to 8 digits); without it a new card's PIN is 123456
//!   --provision-key ALG   puts a fresh ec-p256 or rsa-2048 key in slot 9C (digital signature)
//!                         with a stand-in certificate, unless the slot has a key already
//!
//! Prints one JSON line to stdout, {"reader", "port", "opensc_conf", "pkcs11_module", "atr"},
//! then keeps the card in until stdin is closed or SIGTERM/SIGINT arrives; then removes the
//! card, stops pcscd and exits 0. Exit status 2: bad arguments; 3: the lab could not start.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;

use imza_testdata::card::{
    certificate_for, CardLab, PivAlgorithm, PivCardState, PivSlot, VirtualCard,
    OPENSC_PKCS11_MODULE,
};
use zeroize::Zeroizing;

struct Arguments {
    state: PathBuf,
    pin_env: Option<String>,
    provision: Option<PivAlgorithm>,
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "imza-card-lab: {problem}\nusage: imza-card-lab --state FILE [--pin-env VAR] \
         [--provision-key ec-p256|rsa-2048]"
    );
    std::process::exit(2)
}

fn parse_arguments() -> Arguments {
    let mut state = None;
    let mut pin_env = None;
    let mut provision = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--state" => state = Some(PathBuf::from(value())),
            "--pin-env" => pin_env = Some(value()),
            "--provision-key" => {
                provision = Some(match value().as_str() {
                    "ec-p256" => PivAlgorithm::EcP256,
                    "rsa-2048" => PivAlgorithm::Rsa2048,
                    other => usage(&format!("unknown key type {other:?}")),
                })
            }
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    Arguments {
        state: state.unwrap_or_else(|| usage("--state FILE is required")),
        pin_env,
        provision,
    }
}

fn load_or_create(arguments: &Arguments) -> PivCardState {
    if arguments.state.exists() {
        return PivCardState::load(&arguments.state).unwrap_or_else(|e| {
            eprintln!("imza-card-lab: cannot read the card state: {e}");
            std::process::exit(2)
        });
    }
    match &arguments.pin_env {
        None => PivCardState::new(),
        Some(variable) => {
            let pin = Zeroizing::new(std::env::var(variable).unwrap_or_else(|_| {
                usage(&format!("the environment variable {variable} is not set"))
            }));
            let valid = (6..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit());
            if !valid {
                usage(&format!("the PIN in {variable} must be 6 to 8 digits"));
            }
            PivCardState::with_pin(&pin, 3)
        }
    }
}

/// Sends on `done` when SIGTERM or SIGINT arrives.
fn watch_signals(done: mpsc::Sender<&'static str>) {
    use tokio::signal::unix::{signal, SignalKind};
    for (kind, name) in [
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::interrupt(), "SIGINT"),
    ] {
        let done = done.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap_or_else(|e| {
                eprintln!("imza-card-lab: cannot start the signal runtime: {e}");
                std::process::exit(3)
            });
        // Registering before the thread starts: a signal right after the JSON line is not lost.
        let mut stream = runtime
            .block_on(async { signal(kind) })
            .unwrap_or_else(|e| {
                eprintln!("imza-card-lab: cannot watch {name}: {e}");
                std::process::exit(3)
            });
        std::thread::spawn(move || {
            runtime.block_on(stream.recv());
            let _ = done.send(name);
        });
    }
}

fn main() {
    let arguments = parse_arguments();
    let (done, finished) = mpsc::channel();
    watch_signals(done.clone());
    let mut state = load_or_create(&arguments);
    if let Some(algorithm) = arguments.provision {
        if state.key_algorithm(PivSlot::Signature).is_some() {
            eprintln!("imza-card-lab: slot 9C has a key already; --provision-key ignored");
        } else {
            let spki = state.generate_key(PivSlot::Signature, algorithm);
            state.set_certificate(PivSlot::Signature, &certificate_for(&spki, "imza card lab"));
        }
    }
    let lab = match std::panic::catch_unwind(CardLab::shared) {
        Ok(lab) => lab,
        Err(_) => std::process::exit(3),
    };
    let reader = lab.lease_reader();
    let card = VirtualCard::insert(&reader, state);
    card.persist_to(&arguments.state);
    let line = serde_json::json!({
        "reader": reader.name(),
        "port": reader.port(),
        "opensc_conf": lab.opensc_conf(),
        "pkcs11_module": OPENSC_PKCS11_MODULE,
        "atr": hex::encode(card.atr()),
    });
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
    std::thread::spawn(move || {
        // Anything read is ignored; end of input (or an error) ends the lab.
        let mut buffer = [0u8; 256];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
        let _ = done.send("end of stdin");
    });
    let why = finished.recv().unwrap_or("all watchers gone");
    eprintln!("imza-card-lab: {why}: removing the card and stopping pcscd");
    drop(card);
    drop(reader);
    lab.shutdown();
}
