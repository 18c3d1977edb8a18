//! Certificate policy processing (RFC 5280 §6.1.3 (d)-(f), §6.1.4 (a)-(b), §6.1.5 (g)) on the
//! valid_policy_graph of RFC 9618, which gives the same results as RFC 5280's
//! valid_policy_tree but grows linearly with the policies and mappings of the path, not
//! exponentially (CVE-2023-0464).

use std::collections::{HashMap, HashSet};

use der::asn1::ObjectIdentifier;
use imza_core::oids::ANY_POLICY;

/// One node of the graph (qualifiers are not kept: RFC 9618 §5 recommends not returning them).
#[derive(Clone, Debug)]
struct Node {
    valid_policy: ObjectIdentifier,
    expected_policy_set: Vec<ObjectIdentifier>,
    /// Indices of the parent nodes in the level above.
    parents: Vec<usize>,
}

/// The valid_policy_graph: `levels[d]` holds the nodes of depth d. `None` is the NULL graph.
#[derive(Clone, Debug)]
pub(crate) struct PolicyGraph {
    levels: Option<Vec<Vec<Node>>>,
}

impl PolicyGraph {
    /// §6.1.2 (a): one anyPolicy node at depth 0 expecting anyPolicy.
    pub fn new() -> PolicyGraph {
        PolicyGraph {
            levels: Some(vec![vec![Node {
                valid_policy: ANY_POLICY,
                expected_policy_set: vec![ANY_POLICY],
                parents: Vec::new(),
            }]]),
        }
    }

    pub fn is_null(&self) -> bool {
        self.levels.is_none()
    }

    /// Whether the deepest level has a node for `policy`: what a policy mapping from it
    /// deletes when mapping is inhibited (§6.1.4 (b)(2)).
    pub fn has_policy(&self, policy: &ObjectIdentifier) -> bool {
        self.levels
            .as_ref()
            .and_then(|levels| levels.last())
            .is_some_and(|level| level.iter().any(|n| n.valid_policy == *policy))
    }

    /// §6.1.3 (e): a certificate without certificatePolicies.
    pub fn set_null(&mut self) {
        self.levels = None;
    }

    /// §6.1.3 (d) for a certificate asserting `policies`; `any_policy_applies` is the
    /// condition of (d)(2): inhibit_anyPolicy > 0, or a self-issued intermediate.
    pub fn process_certificate(&mut self, policies: &[ObjectIdentifier], any_policy_applies: bool) {
        let Some(levels) = self.levels.as_mut() else {
            return;
        };
        let Some(previous) = levels.last() else {
            self.levels = None;
            return;
        };
        let any_parent = previous.iter().position(|n| n.valid_policy == ANY_POLICY);
        // Which nodes of depth i-1 expect each policy, in first-seen order: one pass, so the
        // work stays linear in the policies and mappings of the path (RFC 9618 §3).
        let mut expected_order: Vec<ObjectIdentifier> = Vec::new();
        let mut expecting: HashMap<ObjectIdentifier, Vec<usize>> = HashMap::new();
        for (i, node) in previous.iter().enumerate() {
            for policy in &node.expected_policy_set {
                let parents = expecting.entry(*policy).or_default();
                if parents.is_empty() {
                    expected_order.push(*policy);
                }
                parents.push(i);
            }
        }
        let mut level: Vec<Node> = Vec::new();
        let mut created: HashSet<ObjectIdentifier> = HashSet::new();
        // (d)(1): each policy other than anyPolicy, matched exactly or under anyPolicy.
        for policy in policies.iter().filter(|p| **p != ANY_POLICY) {
            let parents = match (expecting.get(policy), any_parent) {
                (Some(parents), _) => parents.clone(),
                (None, Some(any)) => vec![any],
                (None, None) => continue,
            };
            if created.insert(*policy) {
                level.push(Node {
                    valid_policy: *policy,
                    expected_policy_set: vec![*policy],
                    parents,
                });
            }
        }
        // (d)(2): anyPolicy stands for every expected policy not yet matched.
        if any_policy_applies && policies.contains(&ANY_POLICY) {
            for policy in expected_order {
                if !created.insert(policy) {
                    continue;
                }
                let parents = expecting.get(&policy).cloned().unwrap_or_default();
                level.push(Node {
                    valid_policy: policy,
                    expected_policy_set: vec![policy],
                    parents,
                });
            }
        }
        levels.push(level);
        self.prune();
    }

    /// §6.1.4 (b) for the policyMappings of the certificate just processed (depth i).
    /// `mapping_allowed` is policy_mapping > 0.
    pub fn apply_mappings(
        &mut self,
        mappings: &[(ObjectIdentifier, ObjectIdentifier)],
        mapping_allowed: bool,
    ) {
        let Some(levels) = self.levels.as_mut() else {
            return;
        };
        let mut issuer_policies: Vec<ObjectIdentifier> = Vec::new();
        for (issuer, _) in mappings {
            if !issuer_policies.contains(issuer) {
                issuer_policies.push(*issuer);
            }
        }
        let Some(level) = levels.last_mut() else {
            return;
        };
        for id_p in issuer_policies {
            let subjects: Vec<ObjectIdentifier> = mappings
                .iter()
                .filter(|(issuer, _)| *issuer == id_p)
                .map(|(_, subject)| *subject)
                .fold(Vec::new(), |mut acc, s| {
                    if !acc.contains(&s) {
                        acc.push(s);
                    }
                    acc
                });
            if mapping_allowed {
                if let Some(node) = level.iter_mut().find(|n| n.valid_policy == id_p) {
                    node.expected_policy_set = subjects;
                } else if let Some(any) = level.iter().find(|n| n.valid_policy == ANY_POLICY) {
                    // (b)(1): a child of depth i-1's anyPolicy node, the sole parent of
                    // depth i's anyPolicy node.
                    let parents = any.parents.clone();
                    level.push(Node {
                        valid_policy: id_p,
                        expected_policy_set: subjects,
                        parents,
                    });
                }
            } else {
                level.retain(|n| n.valid_policy != id_p);
            }
        }
        if !mapping_allowed {
            self.prune();
        }
    }

    /// Deletes nodes above the deepest level that have no children, repeatedly (§6.1.3
    /// (d)(3)); an empty graph becomes NULL.
    fn prune(&mut self) {
        let Some(levels) = self.levels.as_mut() else {
            return;
        };
        for depth in (0..levels.len().saturating_sub(1)).rev() {
            let (upper, lower) = levels.split_at_mut(depth + 1);
            let (Some(current), Some(children)) = (upper.last_mut(), lower.first_mut()) else {
                continue;
            };
            let mut has_child = vec![false; current.len()];
            for child in children.iter() {
                for &p in &child.parents {
                    if let Some(flag) = has_child.get_mut(p) {
                        *flag = true;
                    }
                }
            }
            let mut new_index = vec![usize::MAX; current.len()];
            let mut kept = 0;
            for (i, keep) in has_child.iter().enumerate() {
                if *keep {
                    new_index[i] = kept;
                    kept += 1;
                }
            }
            let mut i = 0;
            current.retain(|_| {
                let keep = has_child.get(i).copied().unwrap_or(false);
                i += 1;
                keep
            });
            for child in children.iter_mut() {
                for p in child.parents.iter_mut() {
                    *p = new_index.get(*p).copied().unwrap_or(usize::MAX);
                }
                child.parents.retain(|p| *p != usize::MAX);
            }
        }
        if levels.last().is_none_or(|l| l.is_empty()) || levels.first().is_none_or(|l| l.is_empty())
        {
            self.levels = None;
        }
    }

    /// §6.1.5 (g) as RFC 9618 §4.4 words it: the user-constrained-policy-set for the
    /// user-initial-policy-set `initial` (empty, or containing anyPolicy: any policy).
    pub fn user_constrained_policy_set(
        &self,
        initial: &[ObjectIdentifier],
    ) -> Vec<ObjectIdentifier> {
        let Some(levels) = self.levels.as_ref() else {
            return Vec::new();
        };
        let mut authority: Vec<ObjectIdentifier> = Vec::new();
        let add = |p: ObjectIdentifier, set: &mut Vec<ObjectIdentifier>| {
            if !set.contains(&p) {
                set.push(p);
            }
        };
        for depth in 1..levels.len() {
            let (Some(parents), Some(nodes)) = (levels.get(depth - 1), levels.get(depth)) else {
                continue;
            };
            for node in nodes {
                let under_any = node.parents.len() == 1
                    && node
                        .parents
                        .first()
                        .and_then(|&p| parents.get(p))
                        .is_some_and(|p| p.valid_policy == ANY_POLICY);
                if node.valid_policy != ANY_POLICY && under_any {
                    add(node.valid_policy, &mut authority);
                }
            }
        }
        if levels.len() > 1
            && levels
                .last()
                .is_some_and(|l| l.iter().any(|n| n.valid_policy == ANY_POLICY))
        {
            add(ANY_POLICY, &mut authority);
        }
        if initial.is_empty() || initial.contains(&ANY_POLICY) {
            return authority;
        }
        let mut user: Vec<ObjectIdentifier> = authority
            .iter()
            .copied()
            .filter(|p| initial.contains(p))
            .collect();
        if authority.contains(&ANY_POLICY) {
            for p in initial {
                add(*p, &mut user);
            }
        }
        user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P1: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.2.1.48.1");
    const P2: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.2.1.48.2");
    const P3: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.2.1.48.3");

    #[test]
    fn same_policy_all_the_way_is_the_user_constrained_set() {
        let mut graph = PolicyGraph::new();
        graph.process_certificate(&[P1], true);
        graph.process_certificate(&[P1, P2], true);
        assert_eq!(graph.user_constrained_policy_set(&[]), vec![P1]);
        assert_eq!(graph.user_constrained_policy_set(&[P2]), Vec::new());
    }

    #[test]
    fn disjoint_policies_make_the_graph_null() {
        let mut graph = PolicyGraph::new();
        graph.process_certificate(&[P1], true);
        graph.process_certificate(&[P2], true);
        assert!(graph.is_null());
    }

    #[test]
    fn a_mapping_carries_the_issuer_policy_to_the_subject_domain() {
        let mut graph = PolicyGraph::new();
        graph.process_certificate(&[P1], true);
        graph.apply_mappings(&[(P1, P3)], true);
        graph.process_certificate(&[P3], true);
        assert_eq!(graph.user_constrained_policy_set(&[]), vec![P1]);
        // With mapping inhibited the node is deleted and the path has no policy.
        let mut inhibited = PolicyGraph::new();
        inhibited.process_certificate(&[P1], true);
        inhibited.apply_mappings(&[(P1, P3)], false);
        assert!(inhibited.is_null());
    }

    #[test]
    fn any_policy_at_the_end_admits_every_initial_policy() {
        let mut graph = PolicyGraph::new();
        graph.process_certificate(&[ANY_POLICY], true);
        graph.process_certificate(&[ANY_POLICY], true);
        assert_eq!(graph.user_constrained_policy_set(&[]), vec![ANY_POLICY]);
        assert_eq!(graph.user_constrained_policy_set(&[P2]), vec![P2]);
        // anyPolicy inhibited: the leaf's anyPolicy matches nothing.
        let mut inhibited = PolicyGraph::new();
        inhibited.process_certificate(&[ANY_POLICY], true);
        inhibited.process_certificate(&[ANY_POLICY], false);
        assert!(inhibited.is_null());
    }
}
