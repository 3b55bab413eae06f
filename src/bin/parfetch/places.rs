//! Each request's place in the whole list, for the `index` of its line,
//! and its URL as listed, for the `url` (a response says where its
//! redirects led, an error which URL it was about: the line names the
//! listed one either way).
//!
//! The batch numbers its requests 0, 1, 2... in the order it takes them;
//! once a shard or `--resume` leaves URLs out, that number no longer says
//! where the URL stands in the list, and no arithmetic recovers it (a URL
//! shard keeps an irregular subset). So the list's numbers are noted as the
//! batch takes each URL and handed back with its result: only requests
//! under way are held, so memory stays bounded by the concurrency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The list's number and URL of every request under way, by batch position.
#[derive(Clone, Default)]
pub(crate) struct Places(Arc<Mutex<HashMap<usize, (usize, String)>>>);

impl Places {
    /// The URLs of `numbered` (list number, URL), noting each one's number
    /// under the position the batch gives it: its count of URLs taken so
    /// far (`Batch` numbers what it takes from its iterator in order).
    pub(crate) fn track(
        &self,
        numbered: impl Iterator<Item = (usize, String)> + Send,
    ) -> impl Iterator<Item = String> + Send {
        let places = self.clone();
        numbered.enumerate().map(move |(position, (number, url))| {
            places.lock().insert(position, (number, url.clone()));
            url
        })
    }

    /// The list's number and URL of the request at batch `position`,
    /// forgotten once read. (`position` itself and no URL if it was never
    /// noted: cannot happen, as the batch takes a URL before it runs it.)
    pub(crate) fn take(&self, position: usize) -> (usize, String) {
        self.lock()
            .remove(&position)
            .unwrap_or((position, String::new()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, (usize, String)>> {
        crate::lock(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_their_urls_and_are_forgotten() {
        let places = Places::default();
        let numbered = [(3, "a"), (7, "b"), (8, "c")].map(|(n, u)| (n, u.to_owned()));
        let urls: Vec<String> = places.track(numbered.into_iter()).collect();
        assert_eq!(urls, ["a", "b", "c"]);
        assert_eq!(places.take(1), (7, "b".to_owned()));
        assert_eq!(places.take(0), (3, "a".to_owned()));
        assert_eq!(places.take(2), (8, "c".to_owned()));
        assert!(places.lock().is_empty());
    }
}
