//! Sharding decisions (pure): which shard a workspace namespace falls in,
//! each replica's fair share of the shards, and which shard Leases a
//! replica takes or gives up after a read of all of them.
//!
//! The hash is FNV-1a (64 bit) over the namespace's UTF-8 bytes, written
//! out here so that every release and every replica agrees on it: Rust's
//! `DefaultHasher` may change between releases, and two replicas of
//! different versions that disagree would serve one workspace twice.

use std::collections::BTreeSet;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bit.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME)
    })
}

/// The shard (0..shards) of a workspace namespace; shard 0 when there is
/// one shard or none.
pub fn shard_of(namespace: &str, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    (fnv1a(namespace.as_bytes()) % u64::from(shards)) as u32
}

/// The shard label value (`quayside.dev/shard`) an object of the workspace
/// `namespace` must carry under `count` shards, when its `current` value
/// is not exactly that (`None`: nothing to write; never without shards).
/// `current` is whatever a tenant wrote: only compared, as text, with the
/// canonical decimal (so `03` or ` 3` are rewritten too), never used as a
/// number or an index.
pub fn label_to_write(namespace: &str, count: u32, current: Option<&str>) -> Option<String> {
    if count == 0 {
        return None;
    }
    let want = shard_of(namespace, count).to_string();
    (current != Some(want.as_str())).then_some(want)
}

/// At most how many shards one replica holds: ceil(shards / live members),
/// so the live members together can always hold every shard.
pub fn fair_share(shards: u32, members: usize) -> u32 {
    let members = members.max(1) as u64;
    u64::from(shards).div_ceil(members) as u32
}

/// How much `identity` prefers `shard` (rendezvous hashing): replicas try
/// the free shards in different orders, so they seldom race for the same
/// Lease, and each gives up the ones it prefers least.
pub fn preference(identity: &str, shard: u32) -> u64 {
    fnv1a(format!("{identity}/{shard}").as_bytes())
}

/// A shard Lease as one read saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// Held by this replica.
    Us,
    /// Never held, released, or its holder stopped renewing for the lease
    /// duration (judged on our own clock, `plan::lease`).
    Free,
    /// Held by a live other replica.
    Other,
}

/// What to do with the shard Leases after a read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Moves {
    /// Free shards to try to take, most preferred first.
    pub take: Vec<u32>,
    /// Held shards to stop serving and then give up, least preferred first.
    pub release: Vec<u32>,
}

/// Take free shards up to the fair share, or give up those beyond it.
/// `shards[i]` is the state of shard `i`; `draining` are held shards
/// already being given up (they count as no longer ours).
pub fn rebalance(me: &str, shards: &[Holder], members: usize, draining: &BTreeSet<u32>) -> Moves {
    let share = fair_share(shards.len() as u32, members) as usize;
    let by_preference = |mut v: Vec<u32>| {
        v.sort_by_key(|s| std::cmp::Reverse((preference(me, *s), *s)));
        v
    };
    let ours: Vec<u32> = (0..shards.len() as u32)
        .filter(|s| shards[*s as usize] == Holder::Us && !draining.contains(s))
        .collect();
    if ours.len() > share {
        let mut release = by_preference(ours);
        let extra = release.split_off(share);
        return Moves {
            take: Vec::new(),
            release: extra.into_iter().rev().collect(),
        };
    }
    let free: Vec<u32> = (0..shards.len() as u32)
        .filter(|s| shards[*s as usize] == Holder::Free)
        .collect();
    let mut take = by_preference(free);
    take.truncate(share - ours.len());
    Moves {
        take,
        release: Vec::new(),
    }
}

/// Whether the replicas disagree on the number of shards: a live Lease
/// written by a replica with another `--shards` maps namespaces to shards
/// differently, so holding any shard could serve a workspace twice.
pub fn counts_disagree(ours: u32, seen: impl IntoIterator<Item = Option<u32>>) -> bool {
    seen.into_iter().flatten().any(|c| c != ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference (draft-eastlake-fnv): these must never
        // change, or replicas of two releases would disagree.
        let table: &[(&str, u64)] = &[
            ("", 0xcbf29ce484222325),
            ("a", 0xaf63dc4c8601ec8c),
            ("foobar", 0x85944171f73967e8),
        ];
        for (input, want) in table {
            assert_eq!(fnv1a(input.as_bytes()), *want, "{input:?}");
        }
    }

    #[test]
    fn a_namespace_always_falls_in_the_same_shard() {
        let table: &[(&str, u32, u32)] = &[
            ("team-a", 12, (fnv1a(b"team-a") % 12) as u32),
            ("team-a", 1, 0),
            ("team-a", 0, 0),
            ("", 12, (0xcbf29ce484222325u64 % 12) as u32),
            ("a", 16, (0xaf63dc4c8601ec8cu64 % 16) as u32),
            ("foobar", 7, (0x85944171f73967e8u64 % 7) as u32),
        ];
        for (ns, shards, want) in table {
            assert_eq!(shard_of(ns, *shards), *want, "{ns} of {shards}");
            assert!(shard_of(ns, *shards) < (*shards).max(1));
        }
    }

    #[test]
    fn namespaces_spread_over_the_shards() {
        let mut counts = [0u32; 12];
        for i in 0..1200 {
            counts[shard_of(&format!("team-{i}"), 12) as usize] += 1;
        }
        // 100 each on average; none empty, none more than twice that.
        for (shard, n) in counts.iter().enumerate() {
            assert!((50..=200).contains(n), "shard {shard}: {n} of 1200");
        }
    }

    #[test]
    fn the_shard_label_is_rewritten_unless_it_is_exactly_the_namespaces_shard() {
        let ns = "team-a";
        let right = shard_of(ns, 12).to_string();
        let wrong = ((shard_of(ns, 12) + 1) % 12).to_string();
        let padded = format!("0{right}");
        let spaced = format!(" {right}");
        // (current value, written value)
        let table: &[(Option<&str>, Option<&str>)] = &[
            (Some(right.as_str()), None),
            (None, Some(right.as_str())),
            (Some(wrong.as_str()), Some(right.as_str())),
            (Some(padded.as_str()), Some(right.as_str())),
            (Some(spaced.as_str()), Some(right.as_str())),
            (Some("99"), Some(right.as_str())),
            (Some("-1"), Some(right.as_str())),
            (Some("18446744073709551617"), Some(right.as_str())),
            (Some(""), Some(right.as_str())),
            (Some("abc"), Some(right.as_str())),
        ];
        for (current, want) in table {
            assert_eq!(
                label_to_write(ns, 12, *current).as_deref(),
                *want,
                "{current:?}"
            );
        }
        // Without shards nothing is ever stamped.
        assert_eq!(label_to_write(ns, 0, None), None);
        assert_eq!(label_to_write(ns, 0, Some("abc")), None);
    }

    #[test]
    fn fair_share_lets_the_live_members_hold_every_shard() {
        let table: &[(u32, usize, u32)] = &[
            (12, 0, 12),
            (12, 1, 12),
            (12, 2, 6),
            (12, 3, 4),
            (12, 5, 3),
            (12, 13, 1),
            (1, 3, 1),
            (0, 3, 0),
        ];
        for (shards, members, want) in table {
            let share = fair_share(*shards, *members);
            assert_eq!(share, *want, "{shards} over {members}");
            assert!(share as usize * (*members).max(1) >= *shards as usize);
        }
    }

    fn view(s: &str) -> Vec<Holder> {
        s.chars()
            .map(|c| match c {
                'u' => Holder::Us,
                'f' => Holder::Free,
                _ => Holder::Other,
            })
            .collect()
    }

    #[test]
    fn rebalance_takes_free_shards_up_to_the_share_and_gives_up_extras() {
        let none = BTreeSet::new();
        // (view, members, shards taken, shards released)
        let table: &[(&str, usize, usize, usize)] = &[
            ("ffffffffffff", 1, 12, 0),
            ("ffffffffffff", 3, 4, 0),
            ("uuuffffoooo", 3, 1, 0),
            ("uuuuoooooooo", 3, 0, 0),
            ("uuuuuuuuuuuu", 3, 0, 8),
            ("uuuuuuoooooo", 2, 0, 0),
            ("uuuuffoooooo", 2, 2, 0),
            ("oooooooooooo", 1, 0, 0),
            ("", 1, 0, 0),
        ];
        for (v, members, take, release) in table {
            let shards = view(v);
            let moves = rebalance("me", &shards, *members, &none);
            assert_eq!(moves.take.len(), *take, "{v} over {members}: {moves:?}");
            assert_eq!(moves.release.len(), *release, "{v}: {moves:?}");
            assert!(
                moves
                    .take
                    .iter()
                    .all(|s| shards[*s as usize] == Holder::Free)
            );
            assert!(
                moves
                    .release
                    .iter()
                    .all(|s| shards[*s as usize] == Holder::Us)
            );
        }
    }

    #[test]
    fn shards_being_given_up_are_not_counted_or_given_up_twice() {
        let draining: BTreeSet<u32> = [0, 1].into();
        let moves = rebalance("me", &view("uuuuuuoooooo"), 3, &draining);
        assert_eq!(moves.release.len(), 0, "{moves:?}");
        assert!(!moves.release.contains(&0));
        let moves = rebalance("me", &view("uuuuuuuuoooo"), 3, &draining);
        assert_eq!(moves.release.len(), 2, "{moves:?}");
        assert!(moves.release.iter().all(|s| !draining.contains(s)));
    }

    #[test]
    fn replicas_prefer_different_shards() {
        let free = view("ffffffffffff");
        let none = BTreeSet::new();
        let a = rebalance("quayside-a", &free, 3, &none).take;
        let b = rebalance("quayside-b", &free, 3, &none).take;
        assert_ne!(a, b, "two replicas would race for the same Leases");
        // The choice is stable: the same identity prefers the same shards.
        assert_eq!(a, rebalance("quayside-a", &free, 3, &none).take);
    }

    #[test]
    fn a_lease_of_another_shard_count_is_a_disagreement() {
        assert!(!counts_disagree(12, [Some(12), None, Some(12)]));
        assert!(counts_disagree(12, [Some(12), Some(16)]));
        assert!(!counts_disagree(12, []));
    }
}
