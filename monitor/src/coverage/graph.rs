//! Which packages of `cargo metadata`'s resolve a build reaches.
//!
//! The resolve is not quite that: it keeps an optional dependency that a feature names only
//! weakly (`"dep?/feature"`, which enables the feature *if* something else enabled the
//! dependency) even when nothing enabled it (rust-lang/cargo#10801). jiff's `alloc` feature
//! names `defmt?/alloc`, so every user of jiff would be told that defmt and its proc-macro run
//! at build time, and they never do. An edge counts here only if the dependency is declared
//! non-optional for the platform built for, or one of the node's enabled features enables it.
//! (A non-optional declaration for another platform does not count: serde and jiff pin their
//! proc-macro's version with `[target.'cfg(any())'.dependencies]`, which no platform matches.)
use std::collections::{BTreeSet, HashMap};

use cargo_metadata::{
    DependencyKind, Metadata, Node, Package, PackageId,
    cargo_platform::{Cfg, Platform},
};

/// The platform a build is for: its target triple and `rustc --print cfg` for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    /// The target triple.
    pub triple: String,
    /// Its cfg values.
    pub cfg: Vec<Cfg>,
}

impl Target {
    /// Whether a dependency declared for `platform` (none: every platform) applies.
    fn applies(&self, platform: Option<&Platform>) -> bool {
        platform.is_none_or(|p| p.matches(&self.triple, &self.cfg))
    }
}

/// The packages reachable from `roots` through normal and build dependencies (and, when
/// `dev`, the roots' own dev-dependencies) that are activated.
pub(super) fn reachable<'m>(
    metadata: &'m Metadata,
    target: &Target,
    roots: &BTreeSet<&'m PackageId>,
    dev: bool,
) -> BTreeSet<&'m PackageId> {
    let Some(resolve) = &metadata.resolve else {
        return BTreeSet::new();
    };
    let nodes: HashMap<&PackageId, &Node> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let packages: HashMap<&PackageId, &Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let mut seen: BTreeSet<&PackageId> = roots.iter().copied().collect();
    let mut stack: Vec<&PackageId> = roots.iter().copied().collect();
    while let Some(id) = stack.pop() {
        let Some(node) = nodes.get(id) else { continue };
        let is_root = roots.contains(id);
        for dep in &node.deps {
            // Dev-dependencies are built only for the workspace's own tests, never for a
            // dependency's.
            let follow = dep.dep_kinds.iter().any(|k| match k.kind {
                DependencyKind::Development => dev && is_root,
                _ => true,
            }) || dep.dep_kinds.is_empty();
            let activated = match (packages.get(id), packages.get(&dep.pkg)) {
                (Some(from), Some(to)) => activated(target, from, node, to, dev && is_root),
                _ => true,
            };
            if follow && activated && seen.insert(&dep.pkg) {
                stack.push(&dep.pkg);
            }
        }
    }
    seen
}

/// Whether `from` (resolved as `node`) really depends on `to`: some declaration of `to` in
/// `from`'s manifest for this platform is not optional, or an enabled feature of `from` enables
/// it. Dev-dependency declarations count only when `dev` (a workspace member's tests): a
/// crate's own tests are never built, though `cargo metadata` lists their edges (time
/// dev-depends on time-macros, url on serde, both optional otherwise). When no declaration
/// matches (an unusual manifest), the edge is kept: listing a crate too many is better than
/// missing one that runs.
fn activated(target: &Target, from: &Package, node: &Node, to: &Package, dev: bool) -> bool {
    let declarations: Vec<_> = from
        .dependencies
        .iter()
        .filter(|d| d.name == *to.name && d.req.matches(&to.version))
        .filter(|d| target.applies(d.target.as_ref()))
        .filter(|d| dev || d.kind != DependencyKind::Development)
        .collect();
    if declarations.is_empty() || declarations.iter().any(|d| !d.optional) {
        return true;
    }
    // The name features use for it.
    let declared: Vec<&str> = declarations
        .iter()
        .map(|d| d.rename.as_deref().unwrap_or(&d.name))
        .collect();
    node.features.iter().any(|feature| {
        let feature: &str = feature;
        // The implicit feature of an optional dependency (absent when the manifest uses
        // `dep:NAME` anywhere; then it is not in `features` either, unless explicitly defined).
        let implicit = declared.contains(&feature) && !from.features.contains_key(feature);
        implicit
            || from.features.get(feature).is_some_and(|enables| {
                enables.iter().any(|e| {
                    let e = e.strip_prefix("dep:").unwrap_or(e);
                    // `NAME` or `NAME/feature` enable the dependency; `NAME?/feature` does not.
                    let name = e.split('/').next().unwrap_or(e);
                    declared.contains(&name) && !name.ends_with('?')
                })
            })
    })
}
