//! Readiness: the slot map covers every slot, every worker accepts clients, no shutdown began.

use crate::shared::Shared;
use crate::slot::SLOT_COUNT;

/// `Ok` when the gateway is ready for traffic, else why not.
pub fn check(shared: &Shared, workers: usize) -> Result<(), String> {
    if shared.is_shutting_down() {
        return Err("shutting down".into());
    }
    let mut reasons = Vec::new();
    let covered = shared.topology.load().1.covered_slots();
    if covered < SLOT_COUNT {
        reasons.push(format!(
            "the slot map covers {covered} of {SLOT_COUNT} slots"
        ));
    }
    let listening = shared.listening_workers();
    if listening < workers {
        reasons.push(format!("{listening} of {workers} workers are listening"));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::topology::{NodeSpec, ShardSpec, Topology};

    #[test]
    fn ready_needs_every_slot_and_every_worker() {
        let shared = Shared::new(Config::default());
        assert_eq!(
            check(&shared, 2).unwrap_err(),
            "the slot map covers 0 of 16384 slots; 0 of 2 workers are listening"
        );
        let node = |a: &str| NodeSpec {
            addr: a.into(),
            id: String::new(),
        };
        shared.topology.store(Topology::from_shards(vec![ShardSpec {
            master: node("a:1"),
            replicas: vec![],
            slots: vec![(0, 16383)],
        }]));
        shared.set_listening(true);
        assert_eq!(
            check(&shared, 2).unwrap_err(),
            "1 of 2 workers are listening"
        );
        shared.set_listening(true);
        assert_eq!(check(&shared, 2), Ok(()));
        shared.shutdown();
        assert_eq!(check(&shared, 2).unwrap_err(), "shutting down");
    }
}
