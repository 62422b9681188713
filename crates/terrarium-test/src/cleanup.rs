//! What a test run started (the suite's containers, its services, their network), so it is
//! removed when the run ends, fails or is interrupted (Ctrl-C): nothing is left behind unless
//! `--keep` asked for it.

use std::sync::{Arc, Mutex, PoisonError};

use terrarium_engine::Engine;

#[derive(Debug, Default)]
struct Held {
    containers: Vec<String>,
    networks: Vec<String>,
}

/// The containers and networks a run holds; cloned into the Ctrl-C handler.
#[derive(Debug, Clone)]
pub struct Cleanup {
    engine: Engine,
    held: Arc<Mutex<Held>>,
}

impl Cleanup {
    /// Nothing held yet.
    pub fn new(engine: &Engine) -> Self {
        Cleanup {
            engine: engine.clone(),
            held: Arc::default(),
        }
    }

    pub(crate) fn container(&self, name: &str) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.containers.push(name.to_string());
    }

    pub(crate) fn network(&self, name: &str) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.networks.push(name.to_string());
    }

    /// Stop holding `names` (they are kept, or already gone).
    pub(crate) fn forget(&self, names: &[String]) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.containers.retain(|c| !names.contains(c));
        held.networks.retain(|n| !names.contains(n));
    }

    /// Remove `names` (containers with their anonymous volumes, then networks) and stop
    /// holding them.
    pub(crate) fn release(&self, names: &[String]) {
        let (containers, networks) = {
            let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            (
                held.containers
                    .iter()
                    .filter(|c| names.contains(c))
                    .cloned()
                    .collect::<Vec<_>>(),
                held.networks
                    .iter()
                    .filter(|n| names.contains(n))
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        };
        self.remove(&containers, &networks);
        self.forget(names);
    }

    /// Remove everything still held: the Ctrl-C path.
    pub fn now(&self) {
        let (containers, networks) = {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            (
                std::mem::take(&mut held.containers),
                std::mem::take(&mut held.networks),
            )
        };
        self.remove(&containers, &networks);
    }

    fn remove(&self, containers: &[String], networks: &[String]) {
        if !containers.is_empty() {
            let mut args = vec!["rm".to_string(), "--force".into(), "--volumes".into()];
            args.extend(containers.iter().cloned());
            let _ = self.engine.output(&args);
        }
        if !networks.is_empty() {
            let mut args = vec!["network".to_string(), "rm".into()];
            args.extend(networks.iter().cloned());
            let _ = self.engine.output(&args);
        }
    }
}
