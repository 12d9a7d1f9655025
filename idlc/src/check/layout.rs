//! Type layout: which structs and unions contain which, directly or through
//! `optional` (or a union arm other than the first). A cycle of direct
//! containment is infinitely large (an error); an `optional` field or arm
//! whose type can reach its container again is boxed. Both use strongly connected components, computed iteratively so
//! that long chains of types cannot overflow the stack.

use std::collections::{HashMap, VecDeque};

use miette::SourceSpan;

use super::fields::LayoutOwner;
use super::symbols::SymbolTable;
use crate::diagnostic::DiagnosticKind;
use crate::model::{FileModel, TypeDef, TypeRef};
use crate::source::FileId;

/// A struct or union field that holds another struct or union, directly or
/// as `optional`.
#[derive(Debug, Clone)]
pub(super) struct Edge {
    /// The containing type.
    pub owner: LayoutOwner,
    /// The field's index among the owner's checked fields.
    pub field_index: usize,
    /// The contained type.
    pub target: TypeRef,
    /// Held through `optional`, or as a union arm other than the first (so
    /// it can be boxed).
    pub optional: bool,
    /// The field's type, for diagnostics.
    pub span: SourceSpan,
    /// The file declaring the owner.
    pub file: FileId,
}

/// Reports infinitely sized types and sets [`Field::boxed`](crate::model::Field::boxed).
pub(super) fn apply(
    symbols: &SymbolTable,
    edges: &[Edge],
    models: &mut [FileModel],
    problems: &mut Vec<(FileId, DiagnosticKind)>,
) {
    let node_count = symbols.len();
    let mut by_ref: HashMap<(&str, &str), usize> = HashMap::new();
    for id in 0..node_count {
        let Some(symbol) = symbols.get(super::symbols::SymbolId(id)) else {
            continue;
        };
        if let Some(model) = models.get(symbol.file.0) {
            by_ref
                .entry((model.module_name.as_str(), symbol.name.as_str()))
                .or_insert(id);
        }
    }
    // (from, to, edge index)
    let resolved: Vec<(usize, usize, usize)> = edges
        .iter()
        .enumerate()
        .filter_map(|(i, edge)| {
            let to = by_ref.get(&(edge.target.module_name.as_str(), edge.target.name.as_str()))?;
            Some((edge.owner.from.0, *to, i))
        })
        .collect();
    drop(by_ref);

    let mut direct: Vec<Vec<(usize, usize)>> = vec![Vec::new(); node_count];
    let mut any: Vec<Vec<(usize, usize)>> = vec![Vec::new(); node_count];
    for &(from, to, i) in &resolved {
        if from >= node_count || to >= node_count {
            continue;
        }
        if !edges[i].optional {
            direct[from].push((to, i));
        }
        any[from].push((to, i));
    }

    report_infinite(symbols, edges, &direct, problems);

    let components = strongly_connected(&any);
    for &(from, to, i) in &resolved {
        let edge = &edges[i];
        if edge.optional && components.get(from) == components.get(to) {
            set_boxed(models, edge);
        }
    }
}

fn set_boxed(models: &mut [FileModel], edge: &Edge) {
    let owner = edge.owner;
    let fields = match models
        .get_mut(owner.file_index)
        .and_then(|model| model.types.get_mut(owner.type_index))
    {
        Some(TypeDef::Struct(def)) => &mut def.fields,
        Some(TypeDef::Union(def)) => &mut def.arms,
        _ => return,
    };
    if let Some(field) = fields.get_mut(edge.field_index) {
        field.boxed = true;
    }
}

/// One error per cycle of direct containment, at the first field of the
/// cycle's first type.
fn report_infinite(
    symbols: &SymbolTable,
    edges: &[Edge],
    direct: &[Vec<(usize, usize)>],
    problems: &mut Vec<(FileId, DiagnosticKind)>,
) {
    let components = strongly_connected(direct);
    let mut size: HashMap<usize, usize> = HashMap::new();
    for &c in &components {
        *size.entry(c).or_default() += 1;
    }
    let mut reported: Vec<bool> = vec![false; components.len()];
    for node in 0..direct.len() {
        let component = components[node];
        if reported[component] {
            continue;
        }
        let self_loop = direct[node].iter().any(|&(to, _)| to == node);
        if !self_loop && size.get(&component).copied().unwrap_or(0) < 2 {
            continue;
        }
        reported[component] = true;
        let Some(path) = cycle_through(node, direct, &components) else {
            continue;
        };
        let name_of = |id: usize| {
            symbols
                .get(super::symbols::SymbolId(id))
                .map_or_else(String::new, |s| s.name.clone())
        };
        let mut names = vec![name_of(node)];
        names.extend(path.iter().map(|&(to, _)| name_of(to)));
        let Some(&(first_to, first_edge)) = path.first() else {
            continue;
        };
        let edge = &edges[first_edge];
        problems.push((
            edge.file,
            DiagnosticKind::InfiniteSize {
                name: name_of(node),
                cycle: names.join(" -> "),
                span: edge.span,
                next: name_of(first_to),
            },
        ));
    }
}

/// A shortest cycle from `start` back to it within its component, as
/// `(node, edge index)` steps.
fn cycle_through(
    start: usize,
    adjacency: &[Vec<(usize, usize)>],
    components: &[usize],
) -> Option<Vec<(usize, usize)>> {
    let component = components[start];
    let mut parent: HashMap<usize, (usize, usize)> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &(to, edge) in &adjacency[node] {
            if components[to] != component {
                continue;
            }
            if to == start {
                let mut path = vec![(to, edge)];
                let mut at = node;
                while at != start {
                    let &(previous, via) = parent.get(&at)?;
                    path.push((at, via));
                    at = previous;
                }
                path.reverse();
                return Some(path);
            }
            if to != start && !parent.contains_key(&to) {
                parent.insert(to, (node, edge));
                queue.push_back(to);
            }
        }
    }
    None
}

/// Tarjan's strongly connected components, iteratively: the component
/// number of each node.
fn strongly_connected(adjacency: &[Vec<(usize, usize)>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = adjacency.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut component = vec![UNSEEN; n];
    let mut next_index = 0usize;
    let mut next_component = 0usize;
    for start in 0..n {
        if index[start] != UNSEEN {
            continue;
        }
        index[start] = next_index;
        low[start] = next_index;
        next_index += 1;
        stack.push(start);
        on_stack[start] = true;
        let mut calls: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(&mut (node, ref mut next_edge)) = calls.last_mut() {
            if let Some(&(to, _)) = adjacency[node].get(*next_edge) {
                *next_edge += 1;
                if index[to] == UNSEEN {
                    index[to] = next_index;
                    low[to] = next_index;
                    next_index += 1;
                    stack.push(to);
                    on_stack[to] = true;
                    calls.push((to, 0));
                } else if on_stack[to] {
                    low[node] = low[node].min(index[to]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(caller, _)) = calls.last() {
                low[caller] = low[caller].min(low[node]);
            }
            if low[node] == index[node] {
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component[member] = next_component;
                    if member == node {
                        break;
                    }
                }
                next_component += 1;
            }
        }
    }
    component
}

#[cfg(test)]
mod tests {
    use super::strongly_connected;

    #[test]
    fn components() {
        // 0 -> 1 -> 2 -> 0, 3 -> 3, 4 alone
        let adjacency = vec![
            vec![(1, 0)],
            vec![(2, 0)],
            vec![(0, 0)],
            vec![(3, 0)],
            vec![],
        ];
        let c = strongly_connected(&adjacency);
        assert_eq!(c[0], c[1]);
        assert_eq!(c[1], c[2]);
        assert_ne!(c[0], c[3]);
        assert_ne!(c[3], c[4]);
    }

    #[test]
    fn long_chain_does_not_overflow() {
        let n = 200_000;
        let adjacency: Vec<Vec<(usize, usize)>> = (0..n)
            .map(|i| {
                if i + 1 < n {
                    vec![(i + 1, 0)]
                } else {
                    vec![(0, 0)]
                }
            })
            .collect();
        let c = strongly_connected(&adjacency);
        assert!(c.iter().all(|&x| x == c[0]));
    }
}
