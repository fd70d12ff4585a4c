//! Rule C2 (`SPEC.md` §9.1): the nanosecond clock of the fork's HEAD. From `eb838d911` on every
//! journey event carries `ts.monotonic_ns` (int) from the same clock reading as `ts.monotonic`,
//! which is that reading divided by 1e9.
//!
//! Kept apart from [`JourneyChecker`](super::JourneyChecker) so that the event record stays what
//! the seed's wire format has; the caller gives each event's raw `ts.monotonic_ns` beside its
//! `ts.monotonic`.
//!
//! ```
//! use journey_spec::model::ns::{NsReading, check_monotonic_ns};
//! use journey_spec::model::RuleId;
//!
//! let ok = [(0, Some(NsReading::Int(1_500_000_000)), 1.5), (1, Some(NsReading::Int(2_000_000_000)), 2.0)];
//! assert!(check_monotonic_ns("r1", &ok).is_empty());
//! let off = [(0, Some(NsReading::Int(1_500_000_000)), 1.5), (1, Some(NsReading::Int(2_000_000_001)), 2.0)];
//! let v = check_monotonic_ns("r1", &off);
//! assert_eq!((v[0].rule, v[0].event_index), (RuleId::MonotonicNs, 1));
//! ```

use super::event::RequestId;
use super::finding::{Detail, Violation};
use super::rules::RuleId;

/// The raw `ts.monotonic_ns` of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NsReading {
    /// A non-negative int.
    Int(u64),
    /// Something else, named by its type (`negative int`, `double`, …).
    Wrong(&'static str),
}

/// Checks C2 over one journey: `(event index, ts.monotonic_ns if present, ts.monotonic)` for
/// each decoded event, in journey order. At most one violation per event.
pub fn check_monotonic_ns(
    request_id: impl Into<RequestId>,
    events: &[(usize, Option<NsReading>, f64)],
) -> Vec<Violation> {
    let request_id = request_id.into();
    let rule = RuleId::MonotonicNs;
    let mut out = Vec::new();
    let present = events.first().map(|(_, ns, _)| ns.is_some());
    let mut prev: Option<u64> = None;
    for &(index, ns, ts) in events {
        let detail = match (ns, present) {
            (None, Some(true)) => Some(Detail::MissingAttribute { key: "ts.monotonic_ns".to_owned() }),
            (Some(_), Some(false)) => Some(Detail::other(
                "ts.monotonic_ns on this event but not on the journey's first: it is on every event or on none"
                    .to_owned(),
            )),
            (None, Some(false) | None) => None,
            (Some(NsReading::Wrong(found)), _) => Some(Detail::WrongType {
                key: "ts.monotonic_ns".to_owned(),
                expected: "non-negative int".to_owned(),
                found: found.to_owned(),
            }),
            (Some(NsReading::Int(n)), _) => {
                let back = prev.filter(|&p| n < p);
                prev = Some(n);
                // Python's `int / 1e9` converts the int to a double first, as `as f64` does.
                let derived = n as f64 / 1e9;
                match back {
                    Some(p) => Some(Detail::WentBack {
                        field: "ts.monotonic_ns".to_owned(),
                        from: p.to_string(),
                        to: n.to_string(),
                    }),
                    None if derived.to_bits() != ts.to_bits() => Some(Detail::other(format!(
                        "ts.monotonic is {ts}, but ts.monotonic_ns {n} / 1e9 is {derived}: one clock reading gives both"
                    ))),
                    None => None,
                }
            }
        };
        if let Some(detail) = detail {
            out.push(Violation { rule, request_id: request_id.clone(), event_index: index, detail });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_everywhere_is_fine_and_mixed_is_not() {
        assert!(check_monotonic_ns("r", &[(0, None, 1.0), (1, None, 2.0)]).is_empty());
        let v = check_monotonic_ns("r", &[(0, None, 1.0), (1, Some(NsReading::Int(2_000_000_000)), 2.0)]);
        assert_eq!(v.len(), 1);
        let v = check_monotonic_ns("r", &[(0, Some(NsReading::Int(1_000_000_000)), 1.0), (3, None, 2.0)]);
        assert_eq!((v.len(), v[0].event_index), (1, 3));
    }

    #[test]
    fn a_decrease_and_a_wrong_type_are_reported() {
        let v = check_monotonic_ns(
            "r",
            &[(0, Some(NsReading::Int(2_000_000_000)), 2.0), (1, Some(NsReading::Int(1_000_000_000)), 1.0)],
        );
        assert!(matches!(v[0].detail, Detail::WentBack { .. }), "{v:?}");
        let v = check_monotonic_ns("r", &[(0, Some(NsReading::Wrong("double")), 2.0)]);
        assert!(matches!(v[0].detail, Detail::WrongType { .. }), "{v:?}");
    }
}
