//! Impact analysis: the walk of the relationship graph from CIs assumed
//! down (downstream: what breaks) or whose needs are wanted (upstream: what
//! they need), level by level with one batched query per direction and
//! level, a visited set for cycle safety, a depth bound, and redundancy.
//!
//! Which way failure travels along an edge is its type's
//! `impact_propagation`: TARGET_TO_SOURCE (an app fails with the server it
//! runs on), SOURCE_TO_TARGET, BOTH, NONE (never crossed). Downstream follows
//! it, upstream walks it backwards.
//!
//! Redundancy (membership types: the source is a group, the targets its
//! members): downstream, a group reached from a failed member stays up
//! (DEGRADED, not walked past) while at least `min_members_up` (> 0) of its
//! members are OPERATIONAL and not down; it becomes IMPACTED, and is walked
//! past, when more members fall later in the walk. Upstream, what a CI needs
//! only as a member of a group with spare members is REDUNDANT.
//!
//! Retired CIs are not walked into. The walk reads the CI columns it needs (class, name, status, criticality,
//! support group, min_members_up) with each hop, never the CI documents.

use std::collections::{HashMap, HashSet};

use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use sqlx::AnyConnection;

use crate::model::Model;
use crate::store::relationships::{self as store, CiRow, Hop};

/// The cache key whose removal makes every cached impact result stale.
pub fn generation_key(prefix: &str) -> String {
    format!("{prefix}impact:generation")
}

/// The cache keys a change that can change an impact result makes stale (a
/// relationship created or deleted, a CI's status, class or min_members_up,
/// a relationship type): for event-driven invalidation on other replicas.
pub fn impact_stale_keys(prefix: &str) -> Vec<String> {
    vec![generation_key(prefix)]
}

/// What to walk.
#[derive(Debug, Clone)]
pub struct Walk<'a> {
    pub direction: pb::ImpactDirection,
    /// Maximum hops from the nearest start.
    pub max_depth: usize,
    /// The relationship type ids to walk; empty walks every type that propagates.
    pub types: &'a [String],
}

/// A CI the walk reached (or started from).
#[derive(Debug, Clone)]
pub struct Reached {
    pub ci: CiRow,
    pub depth: usize,
    pub level: pb::ImpactLevel,
    /// For a group whose members were counted.
    pub members_up: Option<i64>,
    /// The hop that first reached it (its shortest path's last hop).
    parent: Option<Parent>,
    start: bool,
    /// Downstream: reached only through membership this level, not decided yet.
    pending: bool,
}

#[derive(Debug, Clone)]
struct Parent {
    from: i64,
    relationship_uid: String,
    type_id: String,
    forward: bool,
}

/// The walk's result: every reached CI (starts excluded), and whether it
/// stopped at the depth bound with relationships left to follow.
#[derive(Debug, Default)]
pub struct Outcome {
    nodes: HashMap<i64, Reached>,
    pub depth_limited: bool,
}

impl Outcome {
    /// The reached CIs (the starts left out), in no order.
    pub fn reached(&self) -> impl Iterator<Item = &Reached> {
        self.nodes.values().filter(|n| !n.start)
    }

    /// The hop `parent` from `from` to `to`, as the API shows it.
    fn step(model: &Model, parent: &Parent, from: &Reached, to: &Reached) -> pb::ImpactPathStep {
        let label = model
            .relationship_type(&parent.type_id)
            .map(|t| {
                if parent.forward {
                    t.forward_label.clone()
                } else {
                    t.reverse_label.clone()
                }
            })
            .unwrap_or_default();
        pb::ImpactPathStep {
            relationship: format!("relationships/{}", parent.relationship_uid),
            relationship_type: format!("relationshipTypes/{}", parent.type_id),
            from_ci: format!("cis/{}", from.ci.uid),
            to_ci: format!("cis/{}", to.ci.uid),
            label,
        }
    }

    /// `reached` as the API shows it: its last hop (`via`), and with
    /// `full_path` its whole path from a start.
    pub fn impacted_ci(&self, model: &Model, reached: &Reached, full_path: bool) -> pb::ImpactedCi {
        let mut path = Vec::new();
        let mut at = reached;
        while let Some(parent) = &at.parent {
            let Some(from) = self.nodes.get(&parent.from) else {
                break;
            };
            path.push(Self::step(model, parent, from, at));
            if !full_path || path.len() > reached.depth {
                break; // parents are set once and point back in time; never loops
            }
            at = from;
        }
        // Built last hop first: the first is `via`.
        let via = if full_path {
            path.first().cloned()
        } else {
            path.pop()
        };
        path.reverse();
        let group = reached.members_up.is_some();
        pb::ImpactedCi {
            ci: format!("cis/{}", reached.ci.uid),
            ci_class: format!("classes/{}", reached.ci.ci_class),
            display_name: reached.ci.display_name.clone(),
            criticality: i32::try_from(reached.ci.criticality).unwrap_or_default(),
            support_group: reached.ci.support_group.clone(),
            level: reached.level as i32,
            depth: i32::try_from(reached.depth).unwrap_or(i32::MAX),
            path,
            via,
            members_up: reached
                .members_up
                .and_then(|m| i32::try_from(m).ok())
                .unwrap_or_default(),
            min_members_up: if group {
                i32::try_from(reached.ci.min_members_up).unwrap_or_default()
            } else {
                0
            },
        }
    }
}

/// Which way each propagation lets a walk cross an edge: (source -> target, target -> source).
fn crossing(direction: pb::ImpactDirection, propagation: pb::ImpactPropagation) -> (bool, bool) {
    use pb::ImpactPropagation as P;
    let (s2t, t2s) = match propagation {
        P::SourceToTarget => (true, false),
        P::TargetToSource => (false, true),
        P::Both => (true, true),
        P::None | P::Unspecified => (false, false),
    };
    match direction {
        // Failure travels from source to target: walk forward.
        pb::ImpactDirection::Downstream => (s2t, t2s),
        // Needs: the source needs the target when failure travels target -> source.
        _ => (t2s, s2t),
    }
}

const OPERATIONAL: i64 = pb::CiStatus::Operational as i64;
const RETIRED: i64 = pb::CiStatus::Retired as i64;

/// Walks from `starts` (the CIs' walk columns). The caller checked the
/// request (direction set, types exist).
pub async fn walk(
    conn: &mut AnyConnection,
    model: &Model,
    starts: Vec<CiRow>,
    walk: &Walk<'_>,
) -> Result<Outcome, ApiError> {
    let downstream = walk.direction == pb::ImpactDirection::Downstream;
    let mut forward_types: Vec<&str> = Vec::new();
    let mut backward_types: Vec<&str> = Vec::new();
    let mut membership_types: Vec<&str> = Vec::new();
    let mut all: Vec<(&str, &pb::RelationshipType)> = model.relationship_types().collect();
    all.sort_by_key(|(id, _)| *id);
    for (id, kind) in all {
        if !walk.types.is_empty() && !walk.types.iter().any(|t| t == id) {
            continue;
        }
        let propagation =
            pb::ImpactPropagation::try_from(kind.impact_propagation).unwrap_or_default();
        let (forward, backward) = crossing(walk.direction, propagation);
        if forward {
            forward_types.push(id);
        }
        if backward {
            backward_types.push(id);
        }
        if kind.membership && (forward || backward) {
            membership_types.push(id);
        }
    }
    let is_membership = |type_id: &str| membership_types.contains(&type_id);

    let mut outcome = Outcome::default();
    let nodes = &mut outcome.nodes;
    let start_level = if downstream {
        pb::ImpactLevel::Impacted
    } else {
        pb::ImpactLevel::Required
    };
    let mut frontier = Vec::new();
    for ci in starts {
        frontier.push(ci.id);
        nodes.insert(
            ci.id,
            Reached {
                ci,
                depth: 0,
                level: start_level,
                members_up: None,
                parent: None,
                start: true,
                pending: false,
            },
        );
    }

    while !frontier.is_empty() {
        frontier.sort_unstable();
        frontier.dedup();
        let (expand, limit): (Vec<i64>, Vec<i64>) = frontier
            .iter()
            .partition(|id| nodes.get(id).is_some_and(|n| n.depth < walk.max_depth));
        if !limit.is_empty() && !outcome.depth_limited {
            let known = |id: i64| nodes.contains_key(&id);
            outcome.depth_limited =
                store::any_hop_beyond(conn, &limit, true, &forward_types, &known).await?
                    || store::any_hop_beyond(conn, &limit, false, &backward_types, &known).await?;
        }
        if expand.is_empty() {
            break;
        }
        let known = |id: i64| nodes.contains_key(&id);
        let level_hops =
            store::hops(conn, &expand, &forward_types, &backward_types, &known).await?;
        let mut rows = level_hops.cis;
        // Shallowest origin first, so each CI keeps a shortest path; then a
        // stable order (uids are unique). Depths are looked up once per hop.
        let mut hops: Vec<(usize, Hop)> = level_hops
            .hops
            .into_iter()
            .map(|h| (nodes.get(&h.from).map_or(0, |n| n.depth), h))
            .collect();
        hops.sort_unstable_by(|(da, a), (db, b)| {
            da.cmp(db)
                .then_with(|| a.relationship_uid.cmp(&b.relationship_uid))
        });
        // Upstream: how many members each group of the frontier has.
        let mut member_count: HashMap<i64, i64> = HashMap::new();
        if !downstream {
            for (_, hop) in hops
                .iter()
                .filter(|(_, h)| h.forward && is_membership(&h.type_id))
            {
                *member_count.entry(hop.from).or_default() += 1;
            }
        }

        let mut next = Vec::new();
        let mut candidates: Vec<i64> = Vec::new();
        let mut direct: HashSet<i64> = HashSet::new();
        for (_, hop) in hops {
            let Some(from) = nodes.get(&hop.from) else {
                continue;
            };
            let (from_depth, from_level) = (from.depth, from.level);
            let membership = is_membership(&hop.type_id);
            // Downstream: a group reached from one of its members.
            let via_member = downstream && membership && !hop.forward;
            // Upstream: a member of a group that has members to spare.
            let spare = !downstream
                && membership
                && hop.forward
                && from.ci.min_members_up > 0
                && member_count.get(&hop.from).copied().unwrap_or(0) > from.ci.min_members_up;
            let level = if downstream {
                pb::ImpactLevel::Impacted
            } else if spare || from_level == pb::ImpactLevel::Redundant {
                pb::ImpactLevel::Redundant
            } else {
                pb::ImpactLevel::Required
            };
            let id = hop.to;
            if let Some(existing) = nodes.get_mut(&id) {
                if existing.start {
                    continue;
                }
                if downstream {
                    if existing.pending {
                        if !via_member {
                            direct.insert(id);
                        }
                    } else if existing.level == pb::ImpactLevel::Degraded {
                        if via_member {
                            candidates.push(id);
                        } else {
                            existing.level = pb::ImpactLevel::Impacted;
                            next.push(id);
                        }
                    }
                } else if existing.level == pb::ImpactLevel::Redundant
                    && level == pb::ImpactLevel::Required
                {
                    existing.level = pb::ImpactLevel::Required;
                    next.push(id);
                }
                continue;
            }
            // Reached for the first time: read with the hop. Retired CIs are
            // out of service for good: neither impacted nor needed.
            let Some(ci) = rows.remove(&id).filter(|ci| ci.status != RETIRED) else {
                continue;
            };
            nodes.insert(
                id,
                Reached {
                    ci,
                    depth: from_depth + 1,
                    level,
                    members_up: None,
                    parent: Some(Parent {
                        from: hop.from,
                        relationship_uid: hop.relationship_uid,
                        type_id: hop.type_id,
                        forward: hop.forward,
                    }),
                    start: false,
                    pending: via_member,
                },
            );
            if via_member {
                candidates.push(id);
            } else {
                next.push(id);
            }
        }

        if !candidates.is_empty() {
            candidates.sort_unstable();
            candidates.dedup();
            let mut evaluate = Vec::new();
            for id in candidates {
                if direct.contains(&id) {
                    if let Some(node) = nodes.get_mut(&id) {
                        node.pending = false;
                        node.level = pb::ImpactLevel::Impacted;
                    }
                    next.push(id);
                } else {
                    evaluate.push(id);
                }
            }
            let mut up: HashMap<i64, i64> = evaluate.iter().map(|id| (*id, 0)).collect();
            for (group, member, status) in
                store::members(conn, &evaluate, &membership_types).await?
            {
                let down = nodes.get(&member).is_some_and(|n| {
                    !n.pending && (n.start || n.level == pb::ImpactLevel::Impacted)
                });
                if status == OPERATIONAL
                    && !down
                    && let Some(count) = up.get_mut(&group)
                {
                    *count += 1;
                }
            }
            for id in evaluate {
                let Some(node) = nodes.get_mut(&id) else {
                    continue;
                };
                let members_up = up.get(&id).copied().unwrap_or(0);
                let min = node.ci.min_members_up;
                node.pending = false;
                node.members_up = Some(members_up);
                if min > 0 && members_up >= min {
                    node.level = pb::ImpactLevel::Degraded;
                } else {
                    node.level = pb::ImpactLevel::Impacted;
                    next.push(id);
                }
            }
        }
        frontier = next;
    }
    Ok(outcome)
}
