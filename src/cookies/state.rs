//! The jar's state behind its lock: one `cookie_store::CookieStore` per registrable domain,
//! with the bookkeeping for the bounds (age order) and for expiry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use cookie_store::{Cookie, CookieDomain, CookieError, CookieStore, StoreAction};
use url::Url;

use super::jar::Limits;
use super::rules::{self, Refusal, Target};

/// Where a cookie lives in `cookie_store`: its domain, path and name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub(super) domain: String,
    pub(super) path: String,
    pub(super) name: String,
}

/// A cookie checked and ready to store, with its key and registrable domain.
pub(super) struct Prepared {
    pub(super) cookie: Cookie<'static>,
    pub(super) key: Key,
    pub(super) site: Box<str>,
}

/// One `CookieStore` per registrable domain ("site"): a request only ever matches cookies
/// of its own host's site (public-suffix domains are refused), so a lookup scans that
/// site's few cookies, never the whole jar.
#[derive(Default)]
pub(super) struct State {
    pub(super) sites: HashMap<Arc<str>, Site>,
    /// Every cookie by the sequence number of its last store: oldest first.
    pub(super) order: BTreeMap<u64, Arc<str>>,
    /// Persistent cookies by expiry time, to purge expired ones cheaply.
    expiries: BTreeSet<(SystemTime, u64)>,
    next_seq: u64,
}

#[derive(Default)]
pub(super) struct Site {
    pub(super) store: CookieStore,
    entries: BTreeMap<u64, Entry>,
    index: HashMap<Key, u64>,
}

struct Entry {
    key: Key,
    expires: Option<SystemTime>,
}

/// What storing a cookie did.
pub(super) enum Stored {
    /// Inserted or replaced.
    Stored,
    /// An expired cookie deleted a stored one (or there was none to delete).
    Deleted,
}

impl State {
    pub(super) fn insert(
        &mut self,
        prepared: Prepared,
        url: &Url,
        limits: &Limits,
        now: SystemTime,
    ) -> Result<Stored, Refusal> {
        self.purge_expired(now);
        let Prepared { cookie, key, site } = prepared;
        let site: Arc<str> = match self.sites.get_key_value(&*site) {
            Some((k, _)) => k.clone(),
            None => Arc::from(site),
        };
        let expires = rules::expiry_of(&cookie);
        let entry = self.sites.entry(site.clone()).or_default();
        match entry.store.insert(cookie, url) {
            Ok(StoreAction::Inserted | StoreAction::UpdatedExisting) => {
                let seq = self.next_seq;
                self.next_seq += 1;
                if let Some(old) = entry.index.insert(key.clone(), seq) {
                    if let Some(e) = entry.entries.remove(&old) {
                        if let Some(t) = e.expires {
                            self.expiries.remove(&(t, old));
                        }
                    }
                    self.order.remove(&old);
                }
                tracing::trace!(name = %key.name, domain = %key.domain, "cookie stored");
                entry.entries.insert(seq, Entry { key, expires });
                self.order.insert(seq, site.clone());
                if let Some(t) = expires {
                    self.expiries.insert((t, seq));
                }
                self.enforce(&site, limits);
                Ok(Stored::Stored)
            }
            Ok(StoreAction::ExpiredExisting) | Err(CookieError::Expired) => {
                if !self.remove_key(&site, &key) {
                    self.drop_site_if_empty(&site);
                }
                Ok(Stored::Deleted)
            }
            Err(e) => {
                self.drop_site_if_empty(&site);
                Err(Refusal::store(&key.name, e))
            }
        }
    }

    /// The unexpired cookies matching `target` (domain, path, `Secure`), in sending order.
    pub(super) fn matching(
        &self,
        target: &Target<'_>,
        skip: impl Fn(&str) -> bool,
    ) -> Vec<Match<'_>> {
        let Some(site) = self.sites.get(rules::site_of(&target.host)) else {
            return Vec::new();
        };
        // The clock is read only if a persistent cookie matches.
        let mut now = None;
        let mut found: Vec<Match<'_>> = site
            .store
            .iter_any()
            .filter(|c| {
                target.matches(c)
                    && rules::expiry_of(c)
                        .is_none_or(|t| t > *now.get_or_insert_with(SystemTime::now))
            })
            .map(Match::new)
            .filter(|m| !skip(m.name))
            .collect();
        if found.len() > 1 {
            found.sort_unstable_by(|a, b| {
                b.path_len
                    .cmp(&a.path_len)
                    .then_with(|| b.domain_len.cmp(&a.domain_len))
                    .then_with(|| a.name.cmp(b.name))
            });
        }
        found
    }

    /// Evicts beyond the bounds: the site's oldest first, then the jar's oldest.
    /// (Expired cookies were purged before the insert.)
    fn enforce(&mut self, site: &Arc<str>, limits: &Limits) {
        loop {
            let oldest = match self.sites.get(site) {
                Some(s) if s.entries.len() > limits.max_per_domain => s.entries.keys().next(),
                _ => None,
            };
            match oldest.copied() {
                Some(seq) => {
                    tracing::debug!(site = %site, "cookie jar: domain bound reached, evicting its oldest cookie");
                    self.remove_in_site(site, seq);
                }
                None => break,
            }
        }
        while self.order.len() > limits.max_cookies {
            let Some((&seq, _)) = self.order.first_key_value() else {
                break;
            };
            tracing::debug!("cookie jar: total bound reached, evicting the oldest cookie");
            self.remove_seq(seq);
        }
    }

    pub(super) fn purge_expired(&mut self, now: SystemTime) {
        while self.expiries.first().is_some_and(|&(t, _)| t <= now) {
            if let Some((_, seq)) = self.expiries.pop_first() {
                self.remove_seq(seq);
            }
        }
    }

    pub(super) fn remove_key(&mut self, site: &str, key: &Key) -> bool {
        match self.sites.get(site).and_then(|s| s.index.get(key).copied()) {
            Some(seq) => self.remove_seq(seq),
            None => false,
        }
    }

    /// Removes the cookie stored with sequence number `seq`, wherever it is.
    fn remove_seq(&mut self, seq: u64) -> bool {
        match self.order.get(&seq).cloned() {
            Some(site) => {
                self.remove_in_site(&site, seq);
                true
            }
            None => false,
        }
    }

    /// Removes the cookie `seq` of `site` from every structure (each loop that evicts
    /// relies on this to make progress).
    fn remove_in_site(&mut self, site_name: &str, seq: u64) {
        self.order.remove(&seq);
        if let Some(site) = self.sites.get_mut(site_name) {
            if let Some(e) = site.entries.remove(&seq) {
                site.index.remove(&e.key);
                site.store.remove(&e.key.domain, &e.key.path, &e.key.name);
                if let Some(t) = e.expires {
                    self.expiries.remove(&(t, seq));
                }
            }
        }
        self.drop_site_if_empty(site_name);
    }

    fn drop_site_if_empty(&mut self, site: &str) {
        if self.sites.get(site).is_some_and(|s| s.entries.is_empty()) {
            self.sites.remove(site);
        }
    }
}

/// A matching cookie with its sort keys read once.
pub(super) struct Match<'a> {
    pub(super) cookie: &'a Cookie<'static>,
    pub(super) name: &'a str,
    pub(super) value: &'a str,
    path_len: usize,
    domain_len: usize,
}

impl<'a> Match<'a> {
    fn new(cookie: &'a Cookie<'static>) -> Self {
        Match {
            cookie,
            name: cookie.name(),
            value: cookie.value(),
            path_len: cookie.path.len(),
            domain_len: match &cookie.domain {
                CookieDomain::HostOnly(d) | CookieDomain::Suffix(d) => d.len(),
                CookieDomain::NotPresent | CookieDomain::Empty => 0,
            },
        }
    }
}

impl Key {
    pub(super) fn of(cookie: &Cookie<'_>) -> Key {
        Key {
            domain: String::from(&cookie.domain),
            path: String::from(&cookie.path),
            name: cookie.name().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn prep(cookie: &str, url: &Url) -> Prepared {
        rules::prepare(cookie, url, &Limits::default()).unwrap()
    }

    fn names(state: &State) -> Vec<String> {
        let mut v: Vec<String> = state
            .sites
            .values()
            .flat_map(|s| s.store.iter_any())
            .map(|c| c.name().to_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn expired_cookies_go_before_the_oldest_live_one() {
        let limits = Limits {
            max_cookies: 3,
            max_per_domain: 3,
            max_size: 4096,
        };
        let url = Url::parse("http://a.test/").unwrap();
        let now = SystemTime::now();
        let mut state = State::default();
        for c in ["old=1", "short=1; Max-Age=60", "long=1; Max-Age=3600"] {
            state.insert(prep(c, &url), &url, &limits, now).unwrap();
        }
        // Two minutes later `short` has expired: the new cookie takes its place and the
        // oldest live cookie stays.
        let later = now + Duration::from_secs(120);
        state
            .insert(prep("new=1", &url), &url, &limits, later)
            .unwrap();
        assert_eq!(names(&state), ["long", "new", "old"]);
        assert_eq!(state.expiries.len(), 1);
        // Two hours later `long` has expired too.
        state.purge_expired(now + Duration::from_secs(7200));
        assert_eq!(names(&state), ["new", "old"]);
        assert_eq!(state.order.len(), 2);
        assert!(state.expiries.is_empty());
    }

    #[test]
    fn bookkeeping_stays_consistent() {
        let limits = Limits {
            max_cookies: 10,
            max_per_domain: 4,
            max_size: 4096,
        };
        let now = SystemTime::now();
        let mut state = State::default();
        for i in 0..200 {
            let host = format!("h{}.test", i % 7);
            let url = Url::parse(&format!("http://{host}/")).unwrap();
            let cookie = match i % 5 {
                0 => format!("n{}=1; Max-Age=0", i % 3),
                1 => format!("n{}=1; Max-Age={}", i % 3, 10 + i),
                _ => format!("n{}=1", i % 6),
            };
            let at = now + Duration::from_secs(i);
            state
                .insert(prep(&cookie, &url), &url, &limits, at)
                .unwrap();
            let stored: usize = state
                .sites
                .values()
                .map(|s| s.store.iter_any().count())
                .sum();
            let indexed: usize = state.sites.values().map(|s| s.index.len()).sum();
            let entries: usize = state.sites.values().map(|s| s.entries.len()).sum();
            assert_eq!(stored, state.order.len(), "step {i}");
            assert_eq!(indexed, stored);
            assert_eq!(entries, stored);
            assert!(stored <= limits.max_cookies);
            assert!(state
                .sites
                .values()
                .all(|s| !s.entries.is_empty() && s.entries.len() <= limits.max_per_domain));
            assert!(state.expiries.len() <= stored);
        }
    }
}
