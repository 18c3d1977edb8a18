//! Rate limits on login attempts, shared by every login method: one budget per identity (the
//! national id, however it was written: `5ZK7T2Q` and `PNOAZ-5ZK7T2Q` are one citizen) and one
//! per client address, so that guessing access codes for one citizen, or trying many citizens
//! from one machine, is slowed to a crawl whatever login method it goes through.
//!
//! Each budget is a token bucket kept as one time, GCRA's "theoretical arrival time" (ITU-T
//! I.371), as the mobile signature service's limits are: an attempt at `now` passes while that
//! time is at most `(burst - 1) × interval` ahead of `now`, and moves it `interval` later. An
//! attempt takes from both budgets or from neither. A budget whose time has passed is full and
//! is the same as no entry, so idle entries are dropped by a sweep; each table holds at most
//! `max_tracked` entries and, full of live entries, refuses newcomers until the first expires
//! (failing closed: a flood of made-up identities or addresses cannot buy unlimited guesses).
//!
//! The limits live in memory: each serving process keeps its own, so behind a load balancer
//! spreading one client over `n` nodes the effective budget is `n` times the configured one.
//! The access code's own count of wrong tries, in the store, holds across nodes.
//!
//! IPv6 clients are counted per /64, the block one subscriber usually holds: counting single
//! addresses would let one host take a fresh budget from each of its 2^64 addresses.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use imza_http::rate::nanos;
/// A budget of attempts (the arithmetic is imza-http's, shared with the signature service).
pub use imza_http::rate::RateLimit as Budget;

/// What the limits are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginLimitPolicy {
    /// Per citizen. Default: 10 at once, then one every 30 s.
    pub identity: Budget,
    /// Per client address (IPv6: per /64). Default: 30 at once, then one every 2 s.
    pub address: Budget,
    /// Most entries each table keeps. Default 65,536 (a few MiB at most).
    pub max_tracked: usize,
    /// Proxies whose `X-Forwarded-For` is believed: a request whose peer is one of them is
    /// counted against the address it names (its last entry that is not itself a trusted
    /// proxy). Default none: the peer address is the client, whatever headers say.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for LoginLimitPolicy {
    fn default() -> LoginLimitPolicy {
        LoginLimitPolicy {
            identity: Budget {
                burst: 10,
                interval: Duration::from_secs(30),
            },
            address: Budget {
                burst: 30,
                interval: Duration::from_secs(2),
            },
            max_tracked: 65_536,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A refused attempt: which budget, and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    #[error("too many login attempts for this person; try again in {} s", secs(*retry_after))]
    Identity { retry_after: Duration },
    #[error("too many login attempts from this address; try again in {} s", secs(*retry_after))]
    Address { retry_after: Duration },
    /// A table is full of live entries: newcomers wait until the first expires.
    #[error("the portal is taking too many logins now; try again in {} s", secs(*retry_after))]
    Full { retry_after: Duration },
}

fn secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl LoginRefusal {
    pub fn retry_after(&self) -> Duration {
        match *self {
            LoginRefusal::Identity { retry_after }
            | LoginRefusal::Address { retry_after }
            | LoginRefusal::Full { retry_after } => retry_after,
        }
    }

    /// Whole seconds for `Retry-After` (rounded up, at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        secs(self.retry_after()).max(1)
    }
}

/// The key a citizen's attempts are counted under: the national id (FİN) in upper case, from a
/// national id or a personal code (`PNOAZ-…`). `None` for nothing usable (empty, or longer
/// than any id: such input is refused by the login itself and counted against the address).
pub fn identity_key(identity: &str) -> Option<String> {
    let upper = identity.trim().to_ascii_uppercase();
    let id = upper.strip_prefix("PNOAZ-").unwrap_or(&upper);
    (!id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| id.to_string())
}

/// The key a client address is counted under: IPv4 as is (also when mapped into IPv6), IPv6
/// by its /64.
pub fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// The client a request came from: the peer, or — when the peer is a trusted proxy — the
/// last address in `X-Forwarded-For` that is not itself one (RFC 7239 §5.2's reading: only
/// entries a trusted hop appended are believed). `None` when the peer is unknown.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: &[&str],
    trusted_proxies: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    // Right to left: each entry was appended by the hop before it; stop at the first one a
    // trusted proxy did not vouch for. At most 32 entries are read.
    let entries: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|line| line.split(','))
        .collect();
    for entry in entries.iter().rev().take(32) {
        match entry.trim().parse::<IpAddr>() {
            Ok(address) => {
                client = address;
                if !trusted_proxies.contains(&address) {
                    break;
                }
            }
            // Unreadable: what is left of it cannot be believed; the last good hop is the client.
            Err(_) => break,
        }
    }
    Some(client)
}

/// How often, at least, idle entries are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The shortest time between two sweeps (each visits every entry).
const MIN_SWEEP_GAP: Duration = Duration::from_secs(1);

/// The login limits of one serving process. Shared by every login route.
#[derive(Debug)]
pub struct LoginLimits {
    policy: LoginLimitPolicy,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    identities: Table<String>,
    addresses: Table<IpAddr>,
    last_sweep: Option<i128>,
}

#[derive(Debug)]
struct Table<K> {
    /// Theoretical arrival time (Unix nanoseconds) per key.
    times: HashMap<K, i128>,
    /// No entry expires before this (as of the last sweep and the inserts since).
    earliest_expiry: i128,
}

impl<K> Default for Table<K> {
    fn default() -> Table<K> {
        Table {
            times: HashMap::new(),
            earliest_expiry: i128::MAX,
        }
    }
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn sweep(&mut self, now: i128) {
        self.times.retain(|_, arrival| *arrival > now);
        self.earliest_expiry = self.times.values().copied().min().unwrap_or(i128::MAX);
    }

    /// Whether `key` may be tracked: it is, or there is room for it.
    fn has_room_for(&self, key: &K, max: usize) -> bool {
        self.times.contains_key(key) || self.times.len() < max
    }

    fn store(&mut self, key: K, arrival: i128) {
        self.earliest_expiry = self.earliest_expiry.min(arrival);
        self.times.insert(key, arrival);
    }
}

impl LoginLimits {
    pub fn new(policy: LoginLimitPolicy) -> LoginLimits {
        LoginLimits {
            policy: LoginLimitPolicy {
                max_tracked: policy.max_tracked.max(1),
                ..policy
            },
            state: Mutex::new(State::default()),
        }
    }

    pub fn policy(&self) -> &LoginLimitPolicy {
        &self.policy
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change is a single insert or retain: consistent whatever panicked.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one attempt at `now` from the budget of `address` (`None`: an unknown peer, all
    /// of them counted together) and of `identity` (see [`identity_key`]; `None` or nothing
    /// usable: the address alone), or from neither and says which refused (the longer wait
    /// when both do).
    pub fn admit(
        &self,
        address: Option<IpAddr>,
        identity: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), LoginRefusal> {
        let now = now.unix_timestamp_nanos();
        let address = address_key(address.unwrap_or(IpAddr::from([0u8; 4])));
        let identity = identity.and_then(identity_key);
        let max = self.policy.max_tracked;
        let mut state = self.state();
        state.sweep_if_due(now, false);
        // When a newcomer finds its table(s) full: the earliest a place frees in each.
        let full = |state: &State| {
            let addresses = (!state.addresses.has_room_for(&address, max))
                .then_some(state.addresses.earliest_expiry);
            let identities = identity
                .as_ref()
                .filter(|id| !state.identities.has_room_for(id, max))
                .map(|_| state.identities.earliest_expiry);
            addresses.into_iter().chain(identities).max()
        };
        if full(&state).is_some() {
            state.sweep_if_due(now, true);
            if let Some(frees_at) = full(&state) {
                return Err(LoginRefusal::Full {
                    retry_after: nanos(frees_at - now),
                });
            }
        }
        let stored_address = state.addresses.times.get(&address).copied();
        let (address_now, by_address) = self.policy.address.take(stored_address, now);
        let stored_identity = identity
            .as_ref()
            .and_then(|id| state.identities.times.get(id).copied());
        let (identity_now, by_identity) = match identity {
            Some(_) => self.policy.identity.take(stored_identity, now),
            None => (now, Ok(now)),
        };
        if let (Ok(address_next), Ok(identity_next)) = (by_address, by_identity) {
            state.addresses.store(address, address_next);
            if let Some(id) = identity {
                state.identities.store(id, identity_next);
            }
            return Ok(());
        }
        // Refused: nothing taken, nothing new tracked; only times a clock step put out of
        // reach are brought back.
        if stored_address.is_some() {
            state.addresses.store(address, address_now);
        }
        if let (Some(id), Some(_)) = (identity, stored_identity) {
            state.identities.store(id, identity_now);
        }
        let address_wait = by_address.err().unwrap_or(0);
        let identity_wait = by_identity.err().unwrap_or(0);
        Err(if identity_wait >= address_wait {
            LoginRefusal::Identity {
                retry_after: nanos(identity_wait),
            }
        } else {
            LoginRefusal::Address {
                retry_after: nanos(address_wait),
            }
        })
    }

    /// How many identities and addresses are tracked now.
    pub fn tracked(&self) -> (usize, usize) {
        let state = self.state();
        (state.identities.times.len(), state.addresses.times.len())
    }
}

impl State {
    /// Drops the entries whose budget is full again: every [`SWEEP_EVERY`], or when `full` (a
    /// table is at its cap) and an entry may have expired; never twice within
    /// [`MIN_SWEEP_GAP`].
    fn sweep_if_due(&mut self, now: i128, full: bool) {
        let since = self.last_sweep.map(|at| now - at);
        let gap_kept = since.is_none_or(|s| s < 0 || s >= MIN_SWEEP_GAP.as_nanos() as i128);
        let periodic = since.is_none_or(|s| s < 0 || s >= SWEEP_EVERY.as_nanos() as i128);
        let expired = now
            >= self
                .identities
                .earliest_expiry
                .min(self.addresses.earliest_expiry);
        if !(gap_kept && (periodic || (full && expired))) {
            return;
        }
        self.identities.sweep(now);
        self.addresses.sweep(now);
        self.last_sweep = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-07 10:00 UTC);

    fn at(ms: i64) -> OffsetDateTime {
        T0 + time::Duration::milliseconds(ms)
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn limits(identity: (u32, u64), address: (u32, u64), max: usize) -> LoginLimits {
        LoginLimits::new(LoginLimitPolicy {
            identity: Budget {
                burst: identity.0,
                interval: Duration::from_millis(identity.1),
            },
            address: Budget {
                burst: address.0,
                interval: Duration::from_millis(address.1),
            },
            max_tracked: max,
            trusted_proxies: Vec::new(),
        })
    }

    #[test]
    fn one_citizen_is_limited_across_addresses_and_spellings_of_the_id() {
        let limits = limits((3, 30_000), (100, 10), 100);
        limits
            .admit(ip("10.0.0.1"), Some("5zk7t2q"), at(0))
            .unwrap();
        limits
            .admit(ip("10.0.0.2"), Some("PNOAZ-5ZK7T2Q"), at(0))
            .unwrap();
        limits
            .admit(ip("10.0.0.3"), Some("5ZK7T2Q"), at(0))
            .unwrap();
        assert_eq!(
            limits.admit(ip("10.0.0.4"), Some(" 5ZK7T2Q"), at(0)),
            Err(LoginRefusal::Identity {
                retry_after: Duration::from_secs(30)
            })
        );
        // Another citizen from the same addresses is not held up.
        limits
            .admit(ip("10.0.0.4"), Some("1AB2C3D"), at(0))
            .unwrap();
        limits
            .admit(ip("10.0.0.4"), Some("5ZK7T2Q"), at(30_000))
            .unwrap();
    }

    #[test]
    fn one_address_is_limited_across_citizens_and_refusals_take_nothing() {
        let limits = limits((100, 10), (2, 1_000), 100);
        limits
            .admit(ip("192.0.2.7"), Some("AAAAAAA"), at(0))
            .unwrap();
        limits
            .admit(ip("192.0.2.7"), Some("BBBBBBB"), at(0))
            .unwrap();
        for _ in 0..50 {
            assert!(matches!(
                limits.admit(ip("192.0.2.7"), Some("CCCCCCC"), at(1)),
                Err(LoginRefusal::Address { .. })
            ));
        }
        // The refused attempts took nothing from CCCCCCC's budget, nor tracked it.
        assert_eq!(limits.tracked(), (2, 1));
        limits
            .admit(ip("192.0.2.8"), Some("CCCCCCC"), at(1))
            .unwrap();
        limits.admit(ip("192.0.2.7"), None, at(1_000)).unwrap();
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        let limits = limits((100, 10), (1, 60_000), 100);
        limits.admit(ip("2001:db8:1:2::1"), None, at(0)).unwrap();
        assert!(limits
            .admit(ip("2001:db8:1:2:ffff::9"), None, at(0))
            .is_err());
        limits.admit(ip("2001:db8:1:3::1"), None, at(0)).unwrap();
        limits.admit(ip("192.0.2.1"), None, at(0)).unwrap();
        assert!(limits.admit(ip("::ffff:192.0.2.1"), None, at(0)).is_err());
    }

    #[test]
    fn the_tables_are_bounded_and_idle_entries_go() {
        let limits = limits((1, 1_000), (1_000, 1), 10);
        for i in 0..10 {
            limits
                .admit(ip("10.0.0.1"), Some(&format!("ID{i}")), at(0))
                .unwrap();
        }
        assert_eq!(
            limits.admit(ip("10.0.0.1"), Some("NEW"), at(500)),
            Err(LoginRefusal::Full {
                retry_after: Duration::from_millis(500)
            })
        );
        limits
            .admit(ip("10.0.0.1"), Some("NEW"), at(1_000))
            .unwrap();
        assert_eq!(limits.tracked().0, 1);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        let peer = ip("10.1.1.1");
        let spoofed = ["6.6.6.6, 203.0.113.9"];
        // Not configured: the peer, whatever the header says.
        assert_eq!(client_address(peer, &spoofed, &[]), peer);
        assert_eq!(
            client_address(ip("203.0.113.5"), &spoofed, &[proxy]),
            ip("203.0.113.5")
        );
        // From the trusted proxy: the last entry it appended, not what the client wrote first.
        assert_eq!(client_address(peer, &spoofed, &[proxy]), ip("203.0.113.9"));
        assert_eq!(
            client_address(peer, &["203.0.113.9, 10.1.1.1"], &[proxy]),
            ip("203.0.113.9")
        );
        assert_eq!(client_address(peer, &["junk"], &[proxy]), peer);
        assert_eq!(client_address(None, &spoofed, &[proxy]), None);
    }
}
