//! The portal's expiry notices by mail ([`imza_portal::notices::Mailer`]) over SMTP with
//! lettre: `[portal.mail]` names the server, the sender and, optionally, STARTTLS and an
//! account whose password comes from an environment variable — never from the file, never
//! printed.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use imza_portal::notices::{MailError, Mailer, NoticeMail};

use super::config::MailSection;

/// Mail through one SMTP server.
pub struct SmtpMailer {
    transport: SmtpTransport,
    from: Mailbox,
}

/// Whether `host` is this machine (where plain SMTP without TLS is acceptable).
fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl SmtpMailer {
    /// The mailer `[portal.mail]` asks for; the message says what is wrong with it.
    pub fn new(section: &MailSection) -> Result<SmtpMailer, String> {
        let from: Mailbox = section
            .from
            .parse()
            .map_err(|e| format!("[portal.mail] from {:?}: {e}", section.from))?;
        let mut builder = SmtpTransport::builder_dangerous(&section.host)
            .port(section.port)
            .timeout(Some(Duration::from_secs(section.timeout_seconds)));
        if section.starttls {
            let tls = TlsParameters::new(section.host.clone())
                .map_err(|e| format!("[portal.mail] STARTTLS: {e}"))?;
            builder = builder.tls(Tls::Required(tls));
        }
        match (&section.username, &section.password_env) {
            (Some(user), Some(variable)) => {
                if !section.starttls && !is_loopback(&section.host) {
                    return Err(format!(
                        "[portal.mail] a password goes to {} only with starttls = true (plain \
                         SMTP is for a server on this machine)",
                        section.host
                    ));
                }
                let password = std::env::var(variable)
                    .map_err(|_| format!("[portal.mail] password_env: {variable} is not set"))?;
                builder = builder.credentials(Credentials::new(user.clone(), password));
            }
            (None, None) => {}
            _ => {
                return Err("[portal.mail] username and password_env go together".into());
            }
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
        })
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, mail: &NoticeMail) -> Result<(), MailError> {
        let to: Mailbox = mail.to.parse().map_err(|e| MailError::Address {
            address: mail.to.clone(),
            source: Box::new(e),
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Message(Box::new(e)))?;
        self.transport
            .send(&message)
            .map(|_| ())
            .map_err(|e| MailError::Transport {
                permanent: e.is_permanent(),
                source: Box::new(e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(host: &str) -> MailSection {
        MailSection {
            host: host.into(),
            from: "imza portal <noreply@mygov.az>".into(),
            ..MailSection::default()
        }
    }

    #[test]
    fn a_password_goes_to_another_machine_only_over_starttls() {
        std::env::set_var("IMZA_TEST_SMTP_PASSWORD", "secret");
        let with_account = |host: &str, starttls| MailSection {
            username: Some("portal".into()),
            password_env: Some("IMZA_TEST_SMTP_PASSWORD".into()),
            starttls,
            ..section(host)
        };
        let refused = SmtpMailer::new(&with_account("smtp.mygov.az", false))
            .err()
            .unwrap();
        assert!(refused.contains("starttls"), "{refused}");
        assert!(!refused.contains("secret"));
        assert!(SmtpMailer::new(&with_account("smtp.mygov.az", true)).is_ok());
        assert!(SmtpMailer::new(&with_account("127.0.0.1", false)).is_ok());
        let unset = MailSection {
            password_env: Some("IMZA_TEST_SMTP_UNSET".into()),
            ..with_account("127.0.0.1", false)
        };
        assert!(SmtpMailer::new(&unset).err().unwrap().contains("not set"));
        let bad_from = MailSection {
            from: "not an address".into(),
            ..section("127.0.0.1")
        };
        assert!(SmtpMailer::new(&bad_from).is_err());
    }

    fn notice_to(to: &str) -> NoticeMail {
        NoticeMail {
            to: to.into(),
            subject: "expiry".into(),
            body: "soon".into(),
        }
    }

    /// A mailer to a loopback port that `greeting` answers (None: nothing listens).
    fn mailer_to(
        greeting: Option<&'static str>,
    ) -> (SmtpMailer, Option<std::thread::JoinHandle<()>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = match greeting {
            Some(greeting) => Some(std::thread::spawn(move || {
                use std::io::{Read, Write};
                let (mut stream, _) = listener.accept().unwrap();
                stream.write_all(greeting.as_bytes()).unwrap();
                // Whatever the client says before it hangs up.
                let _ = stream.read(&mut [0; 512]);
            })),
            None => {
                drop(listener);
                None
            }
        };
        let section = MailSection {
            port,
            timeout_seconds: 5,
            ..section("127.0.0.1")
        };
        (SmtpMailer::new(&section).unwrap(), server)
    }

    #[test]
    fn a_failed_send_keeps_lettres_error_and_whether_it_is_for_good() {
        let (mailer, _) = mailer_to(None);
        let unreachable = mailer.send(&notice_to("gunay@mygov.az")).unwrap_err();
        assert!(
            matches!(
                unreachable,
                MailError::Transport {
                    permanent: false,
                    ..
                }
            ),
            "{unreachable:?}"
        );
        let smtp = std::error::Error::source(&unreachable)
            .and_then(|e| e.downcast_ref::<lettre::transport::smtp::Error>())
            .unwrap();
        assert!(!smtp.is_permanent() && !smtp.is_transient());

        let (mailer, server) = mailer_to(Some("554 5.3.2 not accepting mail\r\n"));
        let refused = mailer.send(&notice_to("gunay@mygov.az")).unwrap_err();
        assert!(refused.is_permanent(), "{refused:?}");
        let smtp = std::error::Error::source(&refused)
            .and_then(|e| e.downcast_ref::<lettre::transport::smtp::Error>())
            .unwrap();
        assert_eq!(smtp.status().map(u16::from), Some(554));
        server.unwrap().join().unwrap();

        let bad = mailer.send(&notice_to("not an address")).unwrap_err();
        assert!(
            matches!(&bad, MailError::Address { address, .. } if address == "not an address"),
            "{bad:?}"
        );
        assert!(std::error::Error::source(&bad)
            .and_then(|e| e.downcast_ref::<lettre::address::AddressError>())
            .is_some());
    }
}
