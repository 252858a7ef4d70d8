//! The DC names reads are counted under, by index: given out at start and by each reload that
//! names a new DC, never taken back, so an index keeps meaning the same DC in every worker's
//! cells (which are sized for [`MAX_DCS`] once). Lookups are lock-free (one `ArcSwap` load,
//! done when a worker takes a new topology, not per request).

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::UNKNOWN_DC;

/// Most DC indexes, `unknown` included; DCs past it count as `unknown`.
pub const MAX_DCS: usize = 64;
/// The index of `unknown`: nodes in no configured DC (and DCs past [`MAX_DCS`]).
pub const UNKNOWN_DC_INDEX: usize = 0;

/// DC names by index; index 0 is `unknown`.
#[derive(Debug)]
pub struct DcNames {
    names: ArcSwap<Vec<Arc<str>>>,
}

impl Default for DcNames {
    fn default() -> DcNames {
        DcNames {
            names: ArcSwap::from_pointee(vec![Arc::from(UNKNOWN_DC)]),
        }
    }
}

impl DcNames {
    /// Gives an index to each of `names` not known yet (at start and at each reload).
    pub fn add<'a>(&self, names: impl IntoIterator<Item = &'a str> + Clone) {
        self.names.rcu(|current| {
            let mut next = (**current).clone();
            for name in names.clone() {
                if next.len() < MAX_DCS && !next.iter().any(|n| &**n == name) {
                    next.push(Arc::from(name));
                }
            }
            next
        });
    }

    /// The index of DC `dc`; [`UNKNOWN_DC_INDEX`] for none or a name without one.
    pub fn index(&self, dc: Option<&str>) -> usize {
        dc.and_then(|name| self.names.load().iter().position(|n| &**n == name))
            .unwrap_or(UNKNOWN_DC_INDEX)
    }

    /// Every (index, name), DCs in name order, then `unknown`. A DC a reload removed stays
    /// (its reads were counted and counters do not go away).
    pub fn all(&self) -> Vec<(usize, Arc<str>)> {
        let names = self.names.load();
        let mut out: Vec<(usize, Arc<str>)> = names.iter().cloned().enumerate().skip(1).collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        if let Some(unknown) = names.first() {
            out.push((UNKNOWN_DC_INDEX, unknown.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_stable_and_grow_with_reloads() {
        let dcs = DcNames::default();
        dcs.add(["west", "east"]);
        let (east, west) = (dcs.index(Some("east")), dcs.index(Some("west")));
        assert_eq!((west, east), (1, 2));
        assert_eq!(dcs.index(Some("north")), UNKNOWN_DC_INDEX);
        assert_eq!(dcs.index(None), UNKNOWN_DC_INDEX);
        // A reload names a new DC and drops one: known ones keep their index.
        dcs.add(["north", "east"]);
        assert_eq!(dcs.index(Some("north")), 3);
        assert_eq!(dcs.index(Some("east")), east);
        let all: Vec<(usize, String)> = dcs
            .all()
            .into_iter()
            .map(|(i, n)| (i, n.to_string()))
            .collect();
        assert_eq!(
            all,
            [
                (2, "east".to_string()),
                (3, "north".to_string()),
                (1, "west".to_string()),
                (0, "unknown".to_string())
            ]
        );
        let many: Vec<String> = (0..100).map(|i| format!("dc{i}")).collect();
        dcs.add(many.iter().map(String::as_str));
        assert_eq!(dcs.all().len(), MAX_DCS);
        assert_eq!(dcs.index(Some("dc99")), UNKNOWN_DC_INDEX);
    }
}
