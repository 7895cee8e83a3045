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

use std::collections::BTreeSet;
use std::sync::Arc;

use rayon::prelude::*;

use super::{FileEntry, FxHashMap, IdentEntry, MapRequest, RepoMap, Role, Tag};

const DAMPING: f64 = 0.85;
const MAX_ITERATIONS: usize = 100;
/// Iteration stops when the L1 change is below `TOLERANCE * files`: the
/// test networkx's `pagerank` (and so aider) uses. Fixed, so results are
/// reproducible; a tighter bound only refines digits that never reorder a
/// map (and cost ~2.5x the iterations).
const TOLERANCE: f64 = 1e-6;
/// Weight of the self-edge that lets unreferenced definitions rank.
const SELF_EDGE_WEIGHT: f64 = 0.1;

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

/// The part of the ranking graph that does not depend on the request, built
/// once per map state and cached in [`RepoMap`] (reset by every mutation).
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    /// File index -> path; the order of `RepoMap::files` (sorted).
    paths: Vec<Arc<str>>,
    /// Identifiers that have at least one definition, in name order.
    idents: Vec<GraphIdent>,
    /// Definitions in file order: (file index, tag index in file, ident
    /// index, number of definitions of that ident in that file).
    definitions: Vec<(u32, u32, u32, u32)>,
}

#[derive(Debug, Clone)]
struct GraphIdent {
    name: Arc<str>,
    /// Request-independent part of the multiplier (length, privacy, fan-in).
    base_multiplier: f64,
    /// File indices of the definers.
    definers: Vec<u32>,
    /// (file index, sqrt(reference count)).
    referencers: Vec<(u32, f64)>,
}

impl Graph {
    pub(crate) fn build(map: &RepoMap) -> Graph {
        let paths: Vec<Arc<str>> = map.files.keys().cloned().collect();
        // File id -> dense index. Ids are handed out sequentially, so a table
        // indexed by id is small (a hash map only after very many updates).
        let dense_of = DenseIndex::new(map);
        let no_mentions = BTreeSet::new();
        // Hash-map order must not leak: visit identifiers sorted by name.
        // Names are unique keys, so the parallel unstable sort is deterministic.
        // The first 8 bytes (zero-padded, big-endian) order names like the
        // strings do and settle most comparisons without chasing pointers.
        let mut named: Vec<(u64, &Arc<str>, &IdentEntry)> = map
            .idents
            .iter()
            .filter(|(_, ident)| !ident.definers.is_empty())
            .map(|(name, ident)| (name_prefix(name), name, ident))
            .collect();
        named.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        // Identifiers are built sequentially on purpose: their vectors then lie
        // in iteration order in memory, which every rank iteration walks.
        let idents: Vec<GraphIdent> = named
            .iter()
            .map(|&(_, name, ident)| {
                let mut definers: Vec<u32> = ident.definers.iter().filter_map(|(id, _)| dense_of.get(*id)).collect();
                definers.sort_unstable();
                let mut referencers: Vec<(u32, f64)> = ident
                    .referencers
                    .iter()
                    .filter_map(|(id, count)| dense_of.get(*id).map(|index| (index, f64::from(*count).sqrt())))
                    .collect();
                referencers.sort_unstable_by_key(|(index, _)| *index);
                GraphIdent {
                    name: name.clone(),
                    base_multiplier: ident_multiplier(name, &no_mentions, ident.definers.len()),
                    definers,
                    referencers,
                }
            })
            .collect();
        let ident_index: FxHashMap<&str, u32> =
            idents.iter().enumerate().map(|(index, ident)| (&*ident.name, index as u32)).collect();
        // Per-file definition lists in parallel; `collect` keeps file order.
        let files: Vec<&FileEntry> = map.files.values().collect();
        let definitions: Vec<(u32, u32, u32, u32)> = files
            .par_iter()
            .enumerate()
            .map(|(file_index, entry)| {
                let mut per_file: FxHashMap<&str, u32> = FxHashMap::default();
                for tag in entry.tags.iter().filter(|tag| tag.role == Role::Definition) {
                    *per_file.entry(&*tag.name).or_insert(0) += 1;
                }
                let mut definitions = Vec::with_capacity(per_file.len());
                for (tag_index, tag) in entry.tags.iter().enumerate() {
                    if tag.role != Role::Definition {
                        continue;
                    }
                    let Some(&ident) = ident_index.get(&*tag.name) else {
                        continue;
                    };
                    let count = per_file.get(&*tag.name).copied().unwrap_or(1).max(1);
                    definitions.push((file_index as u32, tag_index as u32, ident, count));
                }
                definitions
            })
            .flatten()
            .collect();
        Graph { paths, idents, definitions }
    }
}

/// The first 8 bytes of a name as a big-endian number, zero-padded.
fn name_prefix(name: &str) -> u64 {
    let mut prefix = [0u8; 8];
    let bytes = name.as_bytes();
    let length = bytes.len().min(8);
    prefix[..length].copy_from_slice(&bytes[..length]);
    u64::from_be_bytes(prefix)
}

/// Maps a file id to its dense index (position in path order).
enum DenseIndex {
    Table(Vec<u32>),
    Map(FxHashMap<u32, u32>),
}

impl DenseIndex {
    fn new(map: &RepoMap) -> DenseIndex {
        let ids = map.files.values().map(|entry| entry.id);
        let largest = ids.clone().max().map_or(0, |id| id as usize + 1);
        if largest <= map.files.len().saturating_mul(4).max(1024) {
            let mut table = vec![u32::MAX; largest];
            for (index, id) in ids.enumerate() {
                table[id as usize] = index as u32;
            }
            DenseIndex::Table(table)
        } else {
            DenseIndex::Map(ids.enumerate().map(|(index, id)| (id, index as u32)).collect())
        }
    }

    fn get(&self, id: u32) -> Option<u32> {
        match self {
            DenseIndex::Table(table) => table.get(id as usize).copied().filter(|&index| index != u32::MAX),
            DenseIndex::Map(map) => map.get(&id).copied(),
        }
    }
}

pub(crate) fn rank<'a>(map: &'a RepoMap, request: &MapRequest) -> Ranking<'a> {
    let graph: &'a Graph = map.graph();
    if graph.paths.is_empty() {
        return Ranking { file_ranks: Vec::new(), definitions: Vec::new() };
    }
    let (personalization, mentioned) = personalization(graph, request);
    let weights = EdgeWeights::new(graph, &mentioned);
    let ranks = power_iteration(graph, &weights, &personalization);
    let definitions = score_definitions(map, graph, &weights, &ranks, &mentioned);
    Ranking { file_ranks: graph.paths.iter().map(|path| &**path).zip(ranks).collect(), definitions }
}

/// The restart distribution (focus files and files defining mentioned
/// identifiers, normalised; uniform when there are none) and which
/// identifiers are mentioned.
fn personalization(graph: &Graph, request: &MapRequest) -> (Vec<f64>, Vec<bool>) {
    let file_count = graph.paths.len();
    let find_file = |path: &str| graph.paths.binary_search_by(|probe| (**probe).cmp(path)).ok();
    let find_ident = |name: &str| graph.idents.binary_search_by(|probe| (*probe.name).cmp(name)).ok();
    let mut personalization = vec![0.0f64; file_count];
    for focus in &request.focus_files {
        if let Some(index) = find_file(focus) {
            personalization[index] += 1.0;
        }
    }
    let mut mentioned = vec![false; graph.idents.len()];
    let mentioned_names: BTreeSet<&str> = request.mentioned_idents.iter().map(String::as_str).collect();
    for name in &mentioned_names {
        if let Some(ident) = find_ident(name) {
            mentioned[ident] = true;
            for &definer in &graph.idents[ident].definers {
                personalization[definer as usize] += 1.0;
            }
        }
    }
    let personal_total: f64 = personalization.iter().sum();
    if personal_total > 0.0 {
        personalization.iter_mut().for_each(|value| *value /= personal_total);
    } else {
        personalization.iter_mut().for_each(|value| *value = 1.0 / file_count as f64);
    }
    (personalization, mentioned)
}

/// Per-request identifier multipliers and each file's total out-weight.
struct EdgeWeights {
    multipliers: Vec<f64>,
    out_weight: Vec<f64>,
}

impl EdgeWeights {
    fn new(graph: &Graph, mentioned: &[bool]) -> Self {
        let multipliers: Vec<f64> = graph
            .idents
            .iter()
            .zip(mentioned)
            .map(|(ident, &is_mentioned)| ident.base_multiplier * if is_mentioned { 10.0 } else { 1.0 })
            .collect();
        let mut out_weight = vec![0.0f64; graph.paths.len()];
        for (ident, &multiplier) in graph.idents.iter().zip(&multipliers) {
            if ident.referencers.is_empty() {
                for &definer in &ident.definers {
                    out_weight[definer as usize] += SELF_EDGE_WEIGHT * multiplier;
                }
            } else {
                let fan_out = ident.definers.len() as f64;
                for &(referencer, sqrt_count) in &ident.referencers {
                    out_weight[referencer as usize] += multiplier * sqrt_count * fan_out;
                }
            }
        }
        EdgeWeights { multipliers, out_weight }
    }

    /// `share[f]` = rank[f] / out_weight[f]: what one unit of edge weight out
    /// of f carries (0 for a dangling file).
    fn share(&self, ranks: &[f64], share: &mut [f64]) {
        for index in 0..ranks.len() {
            share[index] = if self.out_weight[index] > 0.0 { ranks[index] / self.out_weight[index] } else { 0.0 };
        }
    }
}

/// Personalised PageRank by power iteration, until the L1 change is below
/// [`TOLERANCE`] per file (networkx's stop test) or [`MAX_ITERATIONS`].
fn power_iteration(graph: &Graph, weights: &EdgeWeights, personalization: &[f64]) -> Vec<f64> {
    let file_count = graph.paths.len();
    let out_weight = &weights.out_weight;
    let mut ranks = personalization.to_vec();
    let mut next = vec![0.0f64; file_count];
    let mut share = vec![0.0f64; file_count];
    let iterations_started = std::time::Instant::now();
    let mut iterations = 0;
    for _ in 0..MAX_ITERATIONS {
        iterations += 1;
        let mut dangling = 0.0;
        for index in 0..file_count {
            if out_weight[index] > 0.0 {
                share[index] = ranks[index] / out_weight[index];
            } else {
                share[index] = 0.0;
                dangling += ranks[index];
            }
        }
        next.iter_mut().for_each(|value| *value = 0.0);
        for (ident, &multiplier) in graph.idents.iter().zip(&weights.multipliers) {
            if ident.referencers.is_empty() {
                for &definer in &ident.definers {
                    next[definer as usize] += share[definer as usize] * SELF_EDGE_WEIGHT * multiplier;
                }
            } else {
                let inflow = inflow(ident, multiplier, &share);
                for &definer in &ident.definers {
                    next[definer as usize] += inflow;
                }
            }
        }
        let mut change = 0.0;
        for index in 0..file_count {
            let value =
                (1.0 - DAMPING) * personalization[index] + DAMPING * (next[index] + dangling * personalization[index]);
            change += (value - ranks[index]).abs();
            next[index] = value;
        }
        std::mem::swap(&mut ranks, &mut next);
        if change < TOLERANCE * file_count as f64 {
            break;
        }
    }
    tracing::debug!(iterations, elapsed = ?iterations_started.elapsed(), "repo map: PageRank");
    ranks
}

/// Distributes the ranks to definitions: a definition gets the flow its file
/// receives through its identifier, split evenly over that file's
/// definitions of the ident; mentioned identifiers rank above the rest.
fn score_definitions<'a>(
    map: &'a RepoMap,
    graph: &Graph,
    weights: &EdgeWeights,
    ranks: &[f64],
    mentioned: &[bool],
) -> Vec<(&'a Tag, f64)> {
    let multipliers = &weights.multipliers;
    let mut share = vec![0.0f64; ranks.len()];
    weights.share(ranks, &mut share);
    let inflows: Vec<f64> = graph
        .idents
        .iter()
        .zip(multipliers)
        .map(|(ident, &multiplier)| if ident.referencers.is_empty() { 0.0 } else { inflow(ident, multiplier, &share) })
        .collect();
    let file_tags: Vec<&'a [Tag]> = map.files.values().map(|entry| entry.tags.as_slice()).collect();
    graph
        .definitions
        .iter()
        .filter_map(|&(file, tag_index, ident, per_file)| {
            let tag = file_tags.get(file as usize)?.get(tag_index as usize)?;
            let graph_ident = &graph.idents[ident as usize];
            let flow = if graph_ident.referencers.is_empty() {
                share[file as usize] * SELF_EDGE_WEIGHT * multipliers[ident as usize]
            } else {
                inflows[ident as usize]
            };
            let mut score = flow / f64::from(per_file);
            if mentioned[ident as usize] {
                // The user named it: rank it above everything unmentioned
                // (ranks sum to 1, so no unmentioned score reaches 1).
                score += 1.0;
            }
            Some((tag, score))
        })
        .collect()
}

/// Total rank flowing into an identifier from its referencers.
fn inflow(ident: &GraphIdent, multiplier: f64, share: &[f64]) -> f64 {
    multiplier
        * ident.referencers.iter().map(|&(referencer, sqrt_count)| share[referencer as usize] * sqrt_count).sum::<f64>()
}

/// Best score first; ties by path, line, name, then byte offset (total).
pub(crate) fn compare_ranked(a: &(&Tag, f64), b: &(&Tag, f64)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1)
        .then_with(|| a.0.path.cmp(&b.0.path))
        .then(a.0.line.cmp(&b.0.line))
        .then_with(|| a.0.name.cmp(&b.0.name))
        .then(a.0.byte_range.start.cmp(&b.0.byte_range.start))
}

#[cfg(test)]
mod tests {
    use super::name_prefix;

    #[test]
    fn name_prefix_orders_like_the_names() {
        let names = [
            "",
            "a",
            "a\0",
            "a\0b",
            "ab",
            "abc",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "abcdefgz",
            "b",
            "Z",
            "_private",
            "é",
            "ü_long_name",
            "zzzzzzzzzzzz",
        ];
        for a in names {
            for b in names {
                let by_prefix = name_prefix(a).cmp(&name_prefix(b)).then_with(|| a.cmp(b));
                assert_eq!(by_prefix, a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }
}
