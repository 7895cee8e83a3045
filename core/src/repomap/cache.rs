//! The on-disk tag cache of the repo map.
//!
//! One file per workspace, `<cache_dir>/tags-v<N>.postcard` (default
//! location: [`default_cache_dir`], the user's cache directory,
//! `<cache>/sextant/repomap/<blake3 of the canonical root path, 16 hex>/`, so
//! indexing never writes into the repository itself). Layout:
//!
//! ```text
//! CACHE_MAGIC            8 bytes, b"SXTAGS\0\n"
//! CacheHeader            postcard: format version, query hash, written-at
//!                        (ns since the epoch), then per file a CacheMeta:
//!                        path, size, mtime (ns), blake3 of the contents,
//!                        note, length of its tag blob (None: no tags)
//! tag blob per file      in header order, for entries with a length:
//!   names                varint count, then each name (varint length + UTF-8),
//!                        in order of first use
//!   tags                 varint count, then per tag: name index (varint),
//!                        kind code (1 byte, KIND_CODES), flags (1 byte:
//!                        HAS_SIGNATURE 1, HAS_DOC 2, HAS_SCOPE 4,
//!                        IS_REFERENCE 8), line, byte-range start, byte-range
//!                        length (varints), then signature, doc and scope
//!                        (strings) when flagged
//! ```
//!
//! Integers in blobs are LEB128 varints. A blob is decoded only when its file
//! is re-used (in parallel, every read bounds-checked) and copied unchanged
//! when the cache is rewritten. The header's query hash covers
//! [`CACHE_FORMAT_VERSION`], the extraction revision, the kind code table and
//! both tag queries: bumping the version or editing a query is a silent miss.
//! A damaged or truncated file is a miss with a warning, a damaged blob a
//! re-parse of that one file; never a panic. The file is replaced atomically
//! (write a temporary file, rename).

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::extract::Language;
use super::walk::nanos_since_epoch;
use super::{FxHashMap, NameCounts, Note, Role, Tag, TagDetails, TagKind};

/// Bump when the cache layout or tag extraction semantics change.
/// v3: tag blobs in a hand-written layout with a per-file name table.
pub const CACHE_FORMAT_VERSION: u32 = 3;

/// The default cache directory for a workspace root (see the module docs).
/// `None` when the platform has no user cache directory.
pub fn default_cache_dir(root: &Path) -> Option<PathBuf> {
    let canonical = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let digest = blake3::hash(canonical.to_string_lossy().as_bytes()).to_hex();
    Some(dirs::cache_dir()?.join("sextant").join("repomap").join(&digest.as_str()[..16]))
}

/// Opens every cache file, before the postcard header.
const CACHE_MAGIC: &[u8; 8] = b"SXTAGS\0\n";

/// Everything in a cache file but the tags: small, decoded up front. Each
/// entry's tags follow the header as their own postcard blob (in entry order,
/// lengths in [`CacheMeta::tags_bytes`]), so they are decoded in parallel, only
/// for entries that are re-used, and copied unchanged when the cache is
/// rewritten.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheHeader {
    format: u32,
    query_hash: [u8; 32],
    /// When this cache was written (ns since the epoch).
    written_at_ns: u128,
    entries: Vec<CacheMeta>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CacheMeta {
    pub(super) path: String,
    pub(super) size: u64,
    pub(super) mtime_ns: u128,
    pub(super) hash: [u8; 32],
    /// Length of the entry's tag blob ([`encode_tags`]); `None` for
    /// skipped files (binary, not UTF-8, too large).
    pub(super) tags_bytes: Option<u64>,
    pub(super) note: Option<Note>,
}

/// A cache file as read from disk: its header and where each tag blob lies.
pub(super) struct LoadedCache {
    pub(super) written_at_ns: u128,
    pub(super) entries: Vec<CacheMeta>,
    pub(super) bytes: Vec<u8>,
    /// Per entry: the byte range of its tag blob in `bytes`.
    pub(super) blobs: Vec<Option<Range<usize>>>,
}

/// Every [`TagKind`] in the order of its one-byte code in the cache. Its
/// `Debug` text is part of [`query_hash`], so reordering it invalidates caches.
const KIND_CODES: [TagKind; 19] = [
    TagKind::Function,
    TagKind::Method,
    TagKind::Struct,
    TagKind::Enum,
    TagKind::Union,
    TagKind::Trait,
    TagKind::Impl,
    TagKind::Module,
    TagKind::Const,
    TagKind::Static,
    TagKind::Class,
    TagKind::TypeAlias,
    TagKind::Macro,
    TagKind::Constant,
    TagKind::Call,
    TagKind::TypeRef,
    TagKind::ModuleRef,
    TagKind::Import,
    TagKind::MacroCall,
];

const HAS_SIGNATURE: u8 = 1;
const HAS_DOC: u8 = 2;
const HAS_SCOPE: u8 = 4;
/// Set for [`Role::Reference`] tags (clear for definitions).
const IS_REFERENCE: u8 = 8;

/// One file's tags as a cache blob. A hand-written layout rather than serde:
/// decoding it is most of a warm start, and serde's per-field visitor costs
/// several times the work of reading a few varints.
///
/// Layout (all integers LEB128 varints, strings a varint length + UTF-8):
/// the number of distinct names, the names (in order of first use, so the
/// bytes are deterministic), the number of tags, then per tag: name index,
/// kind code ([`KIND_CODES`]), flags (`HAS_*`, `IS_REFERENCE`), line,
/// byte-range start and length, then signature, doc and scope when flagged.
fn encode_tags(tags: &[Tag]) -> Vec<u8> {
    let mut index_of: FxHashMap<&str, u64> = FxHashMap::default();
    let mut names: Vec<&str> = Vec::new();
    let mut body = Vec::with_capacity(tags.len() * 12);
    for tag in tags {
        let name = *index_of.entry(&*tag.name).or_insert_with(|| {
            names.push(&tag.name);
            names.len() as u64 - 1
        });
        put_varint(&mut body, name);
        let kind = KIND_CODES.iter().position(|kind| *kind == tag.kind).unwrap_or_default();
        body.push(kind as u8);
        let mut flags = 0;
        for (present, flag) in [
            (tag.signature().is_some(), HAS_SIGNATURE),
            (tag.doc().is_some(), HAS_DOC),
            (tag.scope().is_some(), HAS_SCOPE),
            (tag.role == Role::Reference, IS_REFERENCE),
        ] {
            if present {
                flags |= flag;
            }
        }
        body.push(flags);
        put_varint(&mut body, u64::from(tag.line));
        put_varint(&mut body, tag.byte_range.start as u64);
        put_varint(&mut body, tag.byte_range.end.saturating_sub(tag.byte_range.start) as u64);
        for text in [tag.signature(), tag.doc(), tag.scope()].into_iter().flatten() {
            put_str(&mut body, text);
        }
    }
    let mut bytes = Vec::with_capacity(body.len() + names.len() * 12 + 10);
    put_varint(&mut bytes, names.len() as u64);
    for name in &names {
        put_str(&mut bytes, name);
    }
    put_varint(&mut bytes, tags.len() as u64);
    bytes.extend_from_slice(&body);
    bytes
}

fn put_varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn put_str(bytes: &mut Vec<u8>, text: &str) {
    put_varint(bytes, text.len() as u64);
    bytes.extend_from_slice(text.as_bytes());
}

/// Reads a blob written by [`encode_tags`]; every read is bounds-checked.
struct BlobReader<'a> {
    bytes: &'a [u8],
}

impl<'a> BlobReader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    fn usize(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }

    fn str(&mut self) -> Option<&'a str> {
        let length = self.usize()?;
        if length > self.bytes.len() {
            return None;
        }
        let (text, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        std::str::from_utf8(text).ok()
    }
}

/// The tags of one cache blob, stamped with `path`, and their name counts
/// (counted by name index, cheaper than hashing every tag's name later);
/// `None` if the blob is damaged (then the file is parsed again).
pub(super) fn decode_tags(bytes: &[u8], path: &Arc<str>) -> Option<(Vec<Tag>, NameCounts)> {
    let mut reader = BlobReader { bytes };
    let name_count = reader.usize()?;
    // Counts come from disk: never reserve more than the bytes could hold.
    let mut names: Vec<Arc<str>> = Vec::with_capacity(name_count.min(bytes.len()));
    for _ in 0..name_count {
        names.push(Arc::from(reader.str()?));
    }
    let tag_count = reader.usize()?;
    let mut tags = Vec::with_capacity(tag_count.min(bytes.len()));
    // Per name index: (definitions, references).
    let mut counts = vec![(0u32, 0u32); names.len()];
    for _ in 0..tag_count {
        let name_index = reader.usize()?;
        let name = names.get(name_index)?.clone();
        let kind = *KIND_CODES.get(usize::from(reader.byte()?))?;
        let flags = reader.byte()?;
        let line = u32::try_from(reader.varint()?).ok()?;
        let start = reader.usize()?;
        let end = start.checked_add(reader.usize()?)?;
        let mut text = |flag: u8| -> Option<Option<String>> {
            if flags & flag == 0 {
                Some(None)
            } else {
                reader.str().map(|text| Some(text.to_string()))
            }
        };
        let signature = text(HAS_SIGNATURE)?;
        let doc = text(HAS_DOC)?;
        let scope = text(HAS_SCOPE)?;
        let role = if flags & IS_REFERENCE == 0 {
            counts[name_index].0 += 1;
            Role::Definition
        } else {
            counts[name_index].1 += 1;
            Role::Reference
        };
        tags.push(Tag {
            path: path.clone(),
            name,
            kind,
            role,
            line,
            byte_range: start..end,
            details: TagDetails::boxed(signature, doc, scope),
        });
    }
    // Trailing bytes mean the blob is not what we wrote.
    if !reader.bytes.is_empty() {
        return None;
    }
    let mut name_counts = Vec::with_capacity(names.len());
    for (name, (definitions, references)) in names.into_iter().zip(counts) {
        if definitions > 0 {
            name_counts.push((name.clone(), Role::Definition, definitions));
        }
        if references > 0 {
            name_counts.push((name, Role::Reference, references));
        }
    }
    Some((tags, name_counts))
}

/// One file's record on its way into the map and the next cache file.
#[derive(Debug, Clone)]
pub(super) struct CacheEntry {
    /// Shared with the entry's tags.
    pub(super) path: Arc<str>,
    pub(super) size: u64,
    pub(super) mtime_ns: u128,
    pub(super) hash: [u8; 32],
    /// `None` for skipped files (binary, not UTF-8, too large).
    pub(super) tags: Option<Vec<Tag>>,
    /// The tags' name counts when the cache decoder produced them.
    pub(super) name_counts: Option<NameCounts>,
    pub(super) note: Option<Note>,
    /// The encoded `tags` in the old cache's bytes, when they came from there.
    pub(super) encoded: Option<Range<usize>>,
}

fn query_hash() -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&CACHE_FORMAT_VERSION.to_le_bytes());
    hasher.update(&super::extract::EXTRACTION_REVISION.to_le_bytes());
    hasher.update(format!("{KIND_CODES:?}").as_bytes());
    hasher.update(Language::Rust.query_source().as_bytes());
    hasher.update(Language::Python.query_source().as_bytes());
    *hasher.finalize().as_bytes()
}

fn cache_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join(format!("tags-v{CACHE_FORMAT_VERSION}.postcard"))
}

pub(super) fn read_cache(cache_dir: &Path) -> Result<Option<LoadedCache>, String> {
    let path = cache_path(cache_dir);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read the tag cache {}: {error}", path.display())),
    };
    let corrupt =
        |problem: &dyn std::fmt::Display| format!("ignoring a corrupt tag cache {}: {problem}", path.display());
    let Some(rest) = bytes.strip_prefix(CACHE_MAGIC.as_slice()) else {
        return Err(corrupt(&"not a sextant tag cache"));
    };
    let (header, blob_region) = postcard::take_from_bytes::<CacheHeader>(rest).map_err(|error| corrupt(&error))?;
    if header.format != CACHE_FORMAT_VERSION || header.query_hash != query_hash() {
        // Stale format or queries: start over silently.
        return Ok(None);
    }
    let mut offset = bytes.len() - blob_region.len();
    let mut blobs = Vec::with_capacity(header.entries.len());
    for entry in &header.entries {
        let Some(length) = entry.tags_bytes else {
            blobs.push(None);
            continue;
        };
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| offset.checked_add(length))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| corrupt(&"truncated"))?;
        blobs.push(Some(offset..end));
        offset = end;
    }
    if offset != bytes.len() {
        return Err(corrupt(&"trailing bytes"));
    }
    Ok(Some(LoadedCache { written_at_ns: header.written_at_ns, entries: header.entries, bytes, blobs }))
}

/// Writes the cache: tags re-used from `old` are copied as encoded there,
/// the others are encoded in parallel.
pub(super) fn write_cache(cache_dir: &Path, entries: &[CacheEntry], old: Option<&LoadedCache>) -> Result<(), String> {
    let path = cache_path(cache_dir);
    let blobs: Vec<Option<std::borrow::Cow<'_, [u8]>>> = entries
        .par_iter()
        .map(|entry| {
            let tags = entry.tags.as_ref()?;
            let copied = entry.encoded.clone().and_then(|range| old.and_then(|old| old.bytes.get(range)));
            Some(match copied {
                Some(bytes) => std::borrow::Cow::Borrowed(bytes),
                None => encode_tags(tags).into(),
            })
        })
        .collect();
    let header = CacheHeader {
        format: CACHE_FORMAT_VERSION,
        query_hash: query_hash(),
        written_at_ns: nanos_since_epoch(SystemTime::now()),
        entries: entries
            .iter()
            .zip(&blobs)
            .map(|(entry, blob)| CacheMeta {
                path: entry.path.to_string(),
                size: entry.size,
                mtime_ns: entry.mtime_ns,
                hash: entry.hash,
                tags_bytes: blob.as_ref().map(|blob| blob.len() as u64),
                note: entry.note.clone(),
            })
            .collect(),
    };
    let header_bytes =
        postcard::to_allocvec(&header).map_err(|error| format!("cannot encode the tag cache: {error}"))?;
    let total = CACHE_MAGIC.len() + header_bytes.len() + blobs.iter().flatten().map(|blob| blob.len()).sum::<usize>();
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(CACHE_MAGIC);
    bytes.extend_from_slice(&header_bytes);
    for blob in blobs.iter().flatten() {
        bytes.extend_from_slice(blob);
    }
    fs::create_dir_all(cache_dir).map_err(|error| format!("cannot create {}: {error}", cache_dir.display()))?;
    // Write-then-rename so a concurrent reader never sees half a file.
    let temporary = cache_dir.join(format!("tags-v{CACHE_FORMAT_VERSION}.{}.tmp", std::process::id()));
    fs::write(&temporary, &bytes).map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
    fs::rename(&temporary, &path).map_err(|error| {
        let _ = fs::remove_file(&temporary);
        format!("cannot replace {}: {error}", path.display())
    })?;
    // Older formats are never read again: do not leave them behind.
    for version in 1..CACHE_FORMAT_VERSION {
        let _ = fs::remove_file(cache_dir.join(format!("tags-v{version}.postcard")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_tags(path: &Arc<str>) -> Vec<Tag> {
        let tag = |name: &str, kind, role, line, range: Range<usize>| Tag {
            path: path.clone(),
            name: Arc::from(name),
            kind,
            role,
            line,
            byte_range: range,
            details: None,
        };
        let mut method = tag("open", TagKind::Method, Role::Definition, 3, 40..400);
        method.details = TagDetails::boxed(
            Some("    pub fn open(path: &Path) -> Result<Store>".to_string()),
            Some("Opens the store.\n\nÜnïcode too.".to_string()),
            Some("Store".to_string()),
        );
        let mut bare = tag("Store", TagKind::Struct, Role::Definition, 0, 0..30);
        bare.details = TagDetails::boxed(None, Some(String::new()), None);
        vec![
            bare,
            method,
            tag("open", TagKind::Call, Role::Reference, 9, 500..504),
            tag("Path", TagKind::TypeRef, Role::Reference, 3, 70..74),
            tag("x", TagKind::MacroCall, Role::Reference, u32::MAX, 1 << 30..(1 << 30) + 1),
        ]
    }

    #[test]
    fn tag_blobs_round_trip() {
        let path: Arc<str> = Arc::from("src/store.rs");
        let tags = sample_tags(&path);
        let encoded = encode_tags(&tags);
        let (decoded, mut counts) = decode_tags(&encoded, &path).expect("decodes");
        assert_eq!(decoded, tags);
        // The decoder's name counts are what counting the tags gives.
        let mut expected: Vec<(Arc<str>, Role, u32)> = crate::repomap::name_counts(&tags)
            .into_iter()
            .map(|(name, role, count)| (name.clone(), role, count))
            .collect();
        expected.sort();
        counts.sort();
        assert_eq!(counts, expected);
        assert_eq!(decode_tags(&encode_tags(&[]), &path), Some((Vec::new(), Vec::new())));
    }

    #[test]
    fn every_kind_has_a_code() {
        for kind in KIND_CODES {
            let path: Arc<str> = Arc::from("a.rs");
            let mut tags = sample_tags(&path);
            tags[0].kind = kind;
            let decoded = decode_tags(&encode_tags(&tags), &path).map(|(tags, _)| tags);
            assert_eq!(decoded, Some(tags));
        }
    }

    #[test]
    fn damaged_tag_blobs_are_rejected_without_panicking() {
        let path: Arc<str> = Arc::from("src/store.rs");
        let encoded = encode_tags(&sample_tags(&path));
        for length in 0..encoded.len() {
            assert_eq!(decode_tags(&encoded[..length], &path), None, "prefix {length}");
        }
        let mut trailing = encoded.clone();
        trailing.push(0);
        assert_eq!(decode_tags(&trailing, &path), None);
        // Flip every byte in turn: decoding may succeed or fail, never panic.
        for index in 0..encoded.len() {
            let mut damaged = encoded.clone();
            damaged[index] ^= 0xff;
            let _ = decode_tags(&damaged, &path);
        }
        // Absurd counts must not allocate absurdly.
        let mut huge = Vec::new();
        put_varint(&mut huge, u64::MAX >> 1);
        assert_eq!(decode_tags(&huge, &path), None);
    }
}
