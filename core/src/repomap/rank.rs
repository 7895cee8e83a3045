//! Personalised PageRank over the file graph, then file rank -> definitions.
//!
//! The graph is aider's: an edge from every file that references an
//! identifier to every file that defines it, weighted by
//! `sqrt(reference count) * ident multiplier` (mentioned x10, long snake/camel
//! names x10, `_private` x0.1, defined in more than 5 files x0.1).
//! Unreferenced definitions get a self-edge of weight 0.1 so they still rank.
//! Definitions of mentioned identifiers additionally get +1.0, which puts them
//! above every unmentioned definition (whose scores are shares of a total
//! rank of 1).
//!
//! Rather than materialising `referencers x definers` edges (quadratic for
//! names like `new` or `__init__`), flow is routed per identifier: a file
//! sends `rank * w / out_weight` into the identifier and every definer
//! receives the identifier's total inflow. This is the same Markov chain.
//!
//! Invariant: deterministic. Identifiers are visited in `BTreeMap` order,
//! files in path order, iteration stops at a fixed tolerance or count, and
//! every sort has a total tie-break.

use std::collections::{BTreeSet, HashMap};

use super::{MapRequest, RepoMap, Role, Tag};

const DAMPING: f64 = 0.85;
const MAX_ITERATIONS: usize = 100;
const TOLERANCE: f64 = 1e-10;

pub(crate) struct Ranking<'a> {
    /// (path, rank) for every file, in path order.
    pub file_ranks: Vec<(&'a str, f64)>,
    /// Every definition with its score, unsorted (callers sort or select the
    /// top with [`compare_ranked`]).
    pub definitions: Vec<(&'a Tag, f64)>,
}

/// How strongly references to `name` pull rank (aider's heuristics).
fn ident_multiplier(name: &str, mentioned: &BTreeSet<&str>, definer_count: usize) -> f64 {
    let mut multiplier = 1.0;
    let has_lower = name.chars().any(|c| c.is_lowercase());
    let has_upper = name.chars().any(|c| c.is_uppercase());
    let is_snake = name.contains('_') && name.chars().any(|c| c.is_alphabetic());
    let is_camel = has_lower && has_upper;
    if mentioned.contains(name) {
        multiplier *= 10.0;
    }
    if (is_snake || is_camel) && name.chars().count() >= 8 {
        multiplier *= 10.0;
    }
    if name.starts_with('_') {
        multiplier *= 0.1;
    }
    if definer_count > 5 {
        multiplier *= 0.1;
    }
    multiplier
}

struct IdentFlow<'a> {
    name: &'a str,
    /// (file index, number of definitions of the ident in that file).
    definers: Vec<(usize, u32)>,
    /// (file index, edge weight per definer). Empty: self-edges only.
    referencers: Vec<(usize, f64)>,
    self_weight: f64,
}

pub(crate) fn rank<'a>(map: &'a RepoMap, request: &MapRequest) -> Ranking<'a> {
    let paths: Vec<&'a str> = map.files.keys().map(|path| &**path).collect();
    let file_count = paths.len();
    if file_count == 0 {
        return Ranking { file_ranks: Vec::new(), definitions: Vec::new() };
    }
    let index_of: HashMap<&str, usize> = paths.iter().enumerate().map(|(index, path)| (*path, index)).collect();
    let mentioned: BTreeSet<&str> = request.mentioned_idents.iter().map(String::as_str).collect();

    // Personalisation: focus files and files defining mentioned identifiers.
    let mut personalization = vec![0.0f64; file_count];
    for focus in &request.focus_files {
        if let Some(&index) = index_of.get(focus.as_str()) {
            personalization[index] += 1.0;
        }
    }
    for name in &mentioned {
        if let Some(ident) = map.idents.get(*name) {
            for path in ident.definers.keys() {
                if let Some(&index) = index_of.get(&**path) {
                    personalization[index] += 1.0;
                }
            }
        }
    }
    let personal_total: f64 = personalization.iter().sum();
    if personal_total > 0.0 {
        personalization.iter_mut().for_each(|value| *value /= personal_total);
    } else {
        personalization.iter_mut().for_each(|value| *value = 1.0 / file_count as f64);
    }

    // Identifier flows and each file's total out-weight.
    let mut out_weight = vec![0.0f64; file_count];
    let mut flows: Vec<IdentFlow<'a>> = Vec::new();
    for (name, ident) in &map.idents {
        if ident.definers.is_empty() {
            continue;
        }
        let multiplier = ident_multiplier(name, &mentioned, ident.definers.len());
        let definers: Vec<(usize, u32)> = ident
            .definers
            .iter()
            .filter_map(|(path, count)| index_of.get(&**path).map(|&index| (index, *count)))
            .collect();
        let referencers: Vec<(usize, f64)> = ident
            .referencers
            .iter()
            .filter_map(|(path, count)| {
                index_of.get(&**path).map(|&index| (index, multiplier * f64::from(*count).sqrt()))
            })
            .collect();
        let self_weight = 0.1 * multiplier;
        if referencers.is_empty() {
            for &(definer, _) in &definers {
                out_weight[definer] += self_weight;
            }
        } else {
            for &(referencer, weight) in &referencers {
                out_weight[referencer] += weight * definers.len() as f64;
            }
        }
        flows.push(IdentFlow { name, definers, referencers, self_weight });
    }

    // Power iteration.
    let mut ranks = personalization.clone();
    let mut next = vec![0.0f64; file_count];
    for _ in 0..MAX_ITERATIONS {
        next.iter_mut().for_each(|value| *value = 0.0);
        for flow in &flows {
            propagate(flow, &ranks, &out_weight, |definer, amount| next[definer] += amount);
        }
        let dangling: f64 = (0..file_count).filter(|&index| out_weight[index] == 0.0).map(|index| ranks[index]).sum();
        let mut change = 0.0;
        for index in 0..file_count {
            let value = (1.0 - DAMPING) * personalization[index] + DAMPING * (next[index] + dangling * personalization[index]);
            change += (value - ranks[index]).abs();
            next[index] = value;
        }
        std::mem::swap(&mut ranks, &mut next);
        if change < TOLERANCE {
            break;
        }
    }

    // Distribute: each (definer file, ident) gets the flow it receives, split
    // evenly over that file's definitions of the ident.
    let mut ident_scores: HashMap<(usize, &str), f64> = HashMap::new();
    for flow in &flows {
        propagate(flow, &ranks, &out_weight, |definer, amount| {
            *ident_scores.entry((definer, flow.name)).or_insert(0.0) += amount;
        });
    }
    let mut definitions: Vec<(&'a Tag, f64)> = Vec::new();
    for (index, entry) in map.files.values().enumerate() {
        for tag in entry.tags.iter().filter(|tag| tag.role == Role::Definition) {
            let per_file_count = map
                .idents
                .get(tag.name.as_str())
                .and_then(|ident| ident.definers.get(&tag.path))
                .copied()
                .unwrap_or(1)
                .max(1);
            let mut score = ident_scores.get(&(index, tag.name.as_str())).copied().unwrap_or(0.0) / f64::from(per_file_count);
            if mentioned.contains(tag.name.as_str()) {
                // The user named it: rank it above everything unmentioned
                // (ranks sum to 1, so no unmentioned score reaches 1).
                score += 1.0;
            }
            definitions.push((tag, score));
        }
    }

    Ranking { file_ranks: paths.into_iter().zip(ranks).collect(), definitions }
}

/// Calls `deliver(definer, amount)` for the rank flowing through one ident.
fn propagate(flow: &IdentFlow, ranks: &[f64], out_weight: &[f64], mut deliver: impl FnMut(usize, f64)) {
    if flow.referencers.is_empty() {
        for &(definer, _) in &flow.definers {
            if out_weight[definer] > 0.0 {
                deliver(definer, ranks[definer] * flow.self_weight / out_weight[definer]);
            }
        }
        return;
    }
    let inflow: f64 = flow
        .referencers
        .iter()
        .filter(|(referencer, _)| out_weight[*referencer] > 0.0)
        .map(|&(referencer, weight)| ranks[referencer] * weight / out_weight[referencer])
        .sum();
    for &(definer, _) in &flow.definers {
        deliver(definer, inflow);
    }
}

/// Best score first; ties by path, line, name, then byte offset (total).
pub(crate) fn compare_ranked(a: &(&Tag, f64), b: &(&Tag, f64)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1)
        .then_with(|| a.0.path.cmp(&b.0.path))
        .then(a.0.line.cmp(&b.0.line))
        .then_with(|| a.0.name.cmp(&b.0.name))
        .then(a.0.byte_range.start.cmp(&b.0.byte_range.start))
}
