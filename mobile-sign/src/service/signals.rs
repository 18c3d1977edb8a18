//! In-memory wake-ups for long polls: a relying party waiting on a session, a phone waiting
//! for requests. They only make a wait end early; what the poll answers is always re-read
//! from the store, so a lost or spurious wake-up costs a read, never a wrong answer.
//!
//! One `watch` channel per topic that has a waiter, dropped with its last waiter: memory
//! follows the polls in flight, not the sessions ever made.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

/// What a long poll waits on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Topic {
    /// A session's state changed (answered).
    Session(String),
    /// A new session for this device.
    Device(String),
}

#[derive(Default)]
pub(crate) struct Signals {
    senders: Mutex<HashMap<Topic, watch::Sender<()>>>,
}

impl Signals {
    fn senders(&self) -> MutexGuard<'_, HashMap<Topic, watch::Sender<()>>> {
        // The map stays consistent whatever panicked while it was held (single inserts and
        // removes).
        self.senders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts listening on `topic`; wake-ups sent from now on are seen by
    /// [`Subscription::changed`].
    pub(crate) fn subscribe(&self, topic: Topic) -> Subscription<'_> {
        let receiver = self
            .senders()
            .entry(topic.clone())
            .or_insert_with(|| watch::channel(()).0)
            .subscribe();
        Subscription {
            signals: self,
            topic,
            receiver: Some(receiver),
        }
    }

    /// Wakes whoever waits on `topic` (nobody, often).
    pub(crate) fn notify(&self, topic: &Topic) {
        if let Some(sender) = self.senders().get(topic) {
            sender.send_replace(());
        }
    }

    /// How many topics have a waiter (for tests).
    #[cfg(test)]
    pub(crate) fn topics(&self) -> usize {
        self.senders().len()
    }
}

pub(crate) struct Subscription<'a> {
    signals: &'a Signals,
    topic: Topic,
    /// Always `Some` until dropped.
    receiver: Option<watch::Receiver<()>>,
}

impl Subscription<'_> {
    /// Forgets the wake-ups seen so far: call it before reading the store, so one that comes
    /// while reading is not lost.
    pub(crate) fn mark_seen(&mut self) {
        if let Some(receiver) = &mut self.receiver {
            receiver.borrow_and_update();
        }
    }

    /// Waits for a wake-up sent since the last [`Subscription::mark_seen`]. Never returns
    /// early on its own: the sender lives as long as this receiver.
    pub(crate) async fn changed(&mut self) {
        if let Some(receiver) = &mut self.receiver {
            if receiver.changed().await.is_ok() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut senders = self.signals.senders();
        drop(self.receiver.take());
        if senders
            .get(&self.topic)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            senders.remove(&self.topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_wake_up_sent_while_reading_is_not_lost_and_topics_go_with_their_waiters() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let signals = Signals::default();
            let topic = Topic::Session("s".into());
            {
                let mut subscription = signals.subscribe(topic.clone());
                subscription.mark_seen();
                // Sent after mark_seen, before the wait starts: the wait still sees it.
                signals.notify(&topic);
                tokio::time::timeout(Duration::from_secs(5), subscription.changed())
                    .await
                    .expect("the wake-up was lost");
                subscription.mark_seen();
                let quiet =
                    tokio::time::timeout(Duration::from_millis(50), subscription.changed()).await;
                assert!(quiet.is_err(), "woke up without a notification");
                assert_eq!(signals.topics(), 1);
            }
            assert_eq!(signals.topics(), 0);
            // Notifying a topic nobody waits on creates nothing.
            signals.notify(&topic);
            assert_eq!(signals.topics(), 0);
        });
    }
}
