//! A table of per-host state, read without locking.
//!
//! Every request looks up its host (for its breaker, its gates); inserts
//! happen once per host. So the table is an immutable map behind an
//! `ArcSwap`: a lookup is a lock-free load, and an insert copies the map.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

/// Per-host values of type `T`, keyed by `host` or `host:port`.
#[derive(Debug)]
pub(crate) struct HostTable<T> {
    hosts: ArcSwap<HashMap<Box<str>, Arc<T>>>,
    /// Serialises inserts (lookups never take it).
    insert: Mutex<()>,
}

impl<T> Default for HostTable<T> {
    fn default() -> HostTable<T> {
        HostTable {
            hosts: ArcSwap::from_pointee(HashMap::new()),
            insert: Mutex::new(()),
        }
    }
}

impl<T> HostTable<T> {
    /// The value for `host`, if there is one.
    pub(crate) fn get(&self, host: &str) -> Option<Arc<T>> {
        self.hosts.load().get(host).cloned()
    }

    /// The value for `host`, made with `make` if there is none yet.
    pub(crate) fn get_or_insert_with(&self, host: &str, make: impl FnOnce() -> T) -> Arc<T> {
        if let Some(value) = self.get(host) {
            return value;
        }
        let _guard = self.insert.lock();
        let current = self.hosts.load();
        if let Some(value) = current.get(host) {
            return Arc::clone(value);
        }
        let value = Arc::new(make());
        let mut hosts = HashMap::clone(&current);
        hosts.insert(host.into(), Arc::clone(&value));
        self.hosts.store(Arc::new(hosts));
        value
    }

    /// Calls `f` on every value.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T)) {
        for value in self.hosts.load().values() {
            f(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_once_per_host() {
        let table = HostTable::default();
        let a = table.get_or_insert_with("a", || 1);
        let again = table.get_or_insert_with("a", || 2);
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(*table.get_or_insert_with("b:8080", || 3), 3);
        assert!(table.get("c").is_none());
        let mut sum = 0;
        table.for_each(|v| sum += v);
        assert_eq!(sum, 4);
    }
}
