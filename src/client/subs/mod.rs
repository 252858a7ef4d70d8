//! A client's subscriptions (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs) on
//! connections of its own, one per master it needs. meridian keeps the set of names the
//! client asked for and answers its (un)subscribe commands itself, with the counts one Redis
//! would show; [`hub`] decides which master holds which name and keeps that true as the map
//! changes; [`conn`] is one connection; [`join`] answers a command once every connection it
//! involved has acknowledged it.

pub mod conn;
pub mod frame;
pub mod hub;
pub mod join;
pub mod names;
pub mod outlet;

use std::rc::Rc;

use crate::backend::env::Env;
use crate::reply::queue::ReplyQueue;

pub use frame::Kind;
pub use hub::Hub;
pub use join::Join;

/// A client's subscriptions, created on its first subscribe-family command.
#[derive(Default)]
pub struct PubSub {
    hub: Option<Rc<Hub>>,
}

impl PubSub {
    /// True while the client has any subscription (RESP2 subscribed mode).
    pub fn is_subscribed(&self) -> bool {
        self.hub.as_ref().is_some_and(|h| h.is_subscribed())
    }

    /// How many channels, patterns and shard channels the client is subscribed to (CLIENT
    /// LIST's `sub`, `psub`, `ssub`).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.hub.as_ref().map_or((0, 0, 0), |h| h.counts())
    }

    /// The client's subscriptions, created on first use.
    pub fn hub(&mut self, env: &Rc<Env>, queue: &Rc<ReplyQueue>) -> Rc<Hub> {
        self.hub.get_or_insert_with(|| Hub::new(env, queue)).clone()
    }

    /// The client's subscriptions, if it ever had any.
    pub fn current(&self) -> Option<&Rc<Hub>> {
        self.hub.as_ref()
    }

    /// Closes every subscription connection (the client left or sent RESET).
    pub fn close_all(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.close();
        }
    }
}
