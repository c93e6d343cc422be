//! The margin of one row under every combination of choices for a few inputs, for the lever
//! search (which weighs hundreds of combinations of contract, payment method, … per request).
//!
//! A tree's leaf depends only on the options it tests along the paths the row can take when
//! every option may hold any of its choices. One walk per tree, splitting the set of choices
//! at each node that tests an option's column, finds that scope and the leaf of every
//! combination of its choices. Two views of the result:
//!
//! * **exact**: per tree, its leaf value for every combination of its scope; a combination's
//!   margin is the same sum in the same order as [`Ensemble::margin`] of the changed row, bit
//!   for bit, with one look-up per tree and no walk;
//! * **for ranking**: trees with the same scope summed into one table of margin changes, so a
//!   combination costs one look-up per distinct scope (a few). These sums run in table order,
//!   so they agree with the exact margin up to rounding (about 1e-15).

use super::Ensemble;

/// The options the caller may change on an encoded row.
pub struct Options<'a> {
    /// Per encoded column, the option that sets it (`None`: the row's value stays).
    pub option_of: &'a [Option<usize>],
    /// Per option, its choices; choice 0 keeps the row's own values.
    pub choices: &'a [usize],
    /// The value of column `c` (set by an option) under that option's choice `k ≥ 1`.
    pub value: &'a dyn Fn(usize, usize) -> f64,
}

/// Most options (choice sets are tracked as one bitmask per option).
pub const MAX_OPTIONS: usize = 16;
/// Most choices per option, the keep choice included.
pub const MAX_CHOICES: usize = 32;

/// Allowed choices per option along a walk.
type Allowed = [u32; MAX_OPTIONS];

/// The row's margin under every combination of choices (see the module docs).
#[derive(Debug, Clone)]
pub struct ChoiceTables {
    /// The ensemble's base margin.
    base: f64,
    /// The row's margin (every option kept).
    margin: f64,
    /// Per tree: the row's leaf value (every option kept).
    kept: Vec<f64>,
    /// Per tree: its entry in `scoped`, or `u32::MAX` when no option changes its leaf.
    slot: Vec<u32>,
    /// Per tree with a scope: its strides (a range of `strides`) and leaf values (from `leaf`).
    scoped: Vec<(u32, u32, u32)>,
    strides: Vec<(u8, u32)>,
    leaf: Vec<f64>,
    /// Trees with the same scope, summed: for ranking.
    groups: Vec<Group>,
}

/// Trees testing the same options: their summed margin change for every combination.
#[derive(Debug, Clone)]
struct Group {
    /// Bitmask of the options in scope.
    scope: u32,
    /// `(option, stride)` per option in scope.
    strides: Vec<(u8, u32)>,
    /// Margin change per combination (index `Σ choice · stride`).
    delta: Vec<f64>,
}

impl Ensemble {
    /// The tables for `row` under `opts`; `None` when the options exceed [`MAX_OPTIONS`] or
    /// [`MAX_CHOICES`], a tree's scope has more than `max_table` combinations, or the tables
    /// would hold more than `max_total` entries in all.
    pub fn choice_tables(
        &self,
        row: &[f64],
        opts: &Options<'_>,
        max_table: usize,
        max_total: usize,
    ) -> Option<ChoiceTables> {
        let n = opts.choices.len();
        if n > MAX_OPTIONS || opts.choices.iter().any(|&k| k == 0 || k > MAX_CHOICES) {
            return None;
        }
        // every option column's value under each choice (choice 0: the row's own), once
        let mut at = vec![u32::MAX; row.len()];
        let mut vals: Vec<f64> = Vec::new();
        for (c, o) in opts.option_of.iter().enumerate() {
            if let Some(o) = *o {
                at[c] = vals.len() as u32;
                vals.push(row[c]);
                vals.extend((1..opts.choices[o]).map(|k| (opts.value)(c, k)));
            }
        }
        let reach = Reach {
            option_of: opts.option_of,
            at,
            vals,
            all: std::array::from_fn(|o| if o < n { full(opts.choices[o]) } else { 0 }),
        };
        let mut out = ChoiceTables {
            base: self.base_margin,
            margin: self.base_margin,
            kept: Vec::with_capacity(self.trees.len()),
            slot: Vec::with_capacity(self.trees.len()),
            scoped: Vec::new(),
            strides: Vec::new(),
            leaf: Vec::new(),
            groups: Vec::new(),
        };
        // (leaf value, allowed choices) of the leaves the row can reach
        let mut leaves: Vec<(f64, Allowed)> = Vec::new();
        let mut stack: Vec<(usize, Allowed)> = Vec::new();
        let mut entries = 0usize;
        for t in &self.trees {
            let scope = reach.leaves(t, row, &mut leaves, &mut stack);
            // the leaf with every option kept
            let keep = leaves
                .iter()
                .find(|(_, a)| (0..n).all(|o| a[o] & 1 != 0))
                .map(|l| l.0)?;
            out.margin += keep;
            out.kept.push(keep);
            if scope == 0 {
                out.slot.push(u32::MAX); // the same leaf under every combination
                continue;
            }
            let s0 = out.strides.len();
            let mut size = 1usize;
            for (o, &k) in opts.choices.iter().enumerate() {
                if scope & (1 << o) != 0 {
                    out.strides.push((o as u8, size as u32));
                    size = size.saturating_mul(k);
                }
            }
            // this tree's leaf table, and a new group table at most
            entries += 2 * size;
            if size > max_table || entries > max_total {
                return None;
            }
            let strides = &out.strides[s0..];
            let l0 = out.leaf.len();
            out.leaf.resize(l0 + size, 0.0);
            let g = match out.groups.iter().position(|g| g.scope == scope) {
                Some(g) => g,
                None => {
                    out.groups.push(Group {
                        scope,
                        strides: strides.to_vec(),
                        delta: vec![0.0; size],
                    });
                    out.groups.len() - 1
                }
            };
            let delta = &mut out.groups[g].delta;
            for (value, allowed) in &leaves {
                for_each_index(strides, allowed, 0, &mut |ix| {
                    out.leaf[l0 + ix] = *value;
                    delta[ix] += value - keep;
                });
            }
            out.slot.push(out.scoped.len() as u32);
            out.scoped
                .push((s0 as u32, out.strides.len() as u32, l0 as u32));
        }
        Some(out)
    }
}

/// One request's walk of the trees with every option free.
struct Reach<'a> {
    option_of: &'a [Option<usize>],
    /// Per option column, where its values start in `vals` (one per choice).
    at: Vec<u32>,
    vals: Vec<f64>,
    /// Every choice of every option allowed.
    all: Allowed,
}

impl Reach<'_> {
    /// The leaves of `t` the row reaches with the choices that reach each (into `leaves`),
    /// and the options the walk tested (bitmask).
    fn leaves(
        &self,
        t: &super::BoostTree,
        row: &[f64],
        leaves: &mut Vec<(f64, Allowed)>,
        stack: &mut Vec<(usize, Allowed)>,
    ) -> u32 {
        leaves.clear();
        let mut scope = 0u32;
        stack.push((0, self.all));
        while let Some((mut i, allowed)) = stack.pop() {
            loop {
                let node = &t.nodes[i];
                if node.is_leaf() {
                    leaves.push((node.value, allowed));
                    break;
                }
                let c = node.feature as usize;
                let Some(o) = self.option_of[c] else {
                    // NaN fails `<=` and goes right, as in `BoostTree::leaf_by`
                    i = if row[c] <= node.threshold {
                        node.left
                    } else {
                        node.right
                    } as usize;
                    continue;
                };
                scope |= 1 << o;
                let v = &self.vals[self.at[c] as usize..];
                let mut left = 0u32;
                let mut rest = allowed[o];
                while rest != 0 {
                    let k = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    if v[k] <= node.threshold {
                        left |= 1 << k;
                    }
                }
                let right = allowed[o] & !left;
                if left != 0 && right != 0 {
                    let mut a = allowed;
                    a[o] = right;
                    stack.push((node.right as usize, a));
                    let mut a = allowed;
                    a[o] = left;
                    stack.push((node.left as usize, a));
                    break;
                }
                i = if left != 0 { node.left } else { node.right } as usize;
            }
        }
        scope
    }
}

/// Bitmask of choices `0..k`.
fn full(k: usize) -> u32 {
    if k >= 32 {
        u32::MAX
    } else {
        (1u32 << k) - 1
    }
}

/// Call `f` with the table index of every combination of the `allowed` choices (plus `base`).
fn for_each_index(
    strides: &[(u8, u32)],
    allowed: &Allowed,
    base: usize,
    f: &mut impl FnMut(usize),
) {
    let Some((&(o, stride), rest)) = strides.split_first() else {
        f(base);
        return;
    };
    let mut m = allowed[o as usize];
    while m != 0 {
        let k = m.trailing_zeros() as usize;
        m &= m - 1;
        for_each_index(rest, allowed, base + k * stride as usize, f);
    }
}

/// Table index of `choice` (per option) under `strides`.
#[inline]
fn index(strides: &[(u8, u32)], choice: &[usize]) -> usize {
    strides
        .iter()
        .map(|&(o, s)| choice[o as usize] * s as usize)
        .sum()
}

impl ChoiceTables {
    /// Margin of the row with option `o` at choice `choice[o]` (0 keeps it), for ranking:
    /// equal to [`ChoiceTables::exact_margin`] up to rounding.
    pub fn margin(&self, choice: &[usize]) -> f64 {
        let mut m = self.margin;
        for g in &self.groups {
            m += g.delta[index(&g.strides, choice)];
        }
        m
    }

    /// Margin of the row with option `o` at choice `choice[o]`, bit-identical to
    /// [`Ensemble::margin`] of the changed row.
    pub fn exact_margin(&self, choice: &[usize]) -> f64 {
        let mut m = self.base;
        for (&kept, &slot) in self.kept.iter().zip(&self.slot) {
            m += if slot == u32::MAX {
                kept
            } else {
                let (s0, s1, l0) = self.scoped[slot as usize];
                self.leaf[l0 as usize + index(&self.strides[s0 as usize..s1 as usize], choice)]
            };
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::boost::testing::{leaf, node, xorshift};
    use crate::model::boost::{BoostParams, BoostTree};

    #[test]
    fn every_combination_matches_scoring_the_changed_row() {
        // columns 0..3: a one-hot option (0, 1, 2; choices keep, set 0, set 1, set 2), column
        // 3 a boolean option (choices keep, set to 1, set to 0), columns 4, 5 fixed
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let trees: Vec<BoostTree> = (0..150)
            .map(|_| {
                let mut nodes = Vec::new();
                for i in 0..15u32 {
                    let f = (next() % 6) as u32;
                    let th = if f < 4 {
                        0.5
                    } else {
                        (next() % 10) as f64 / 5.0 - 1.0
                    };
                    nodes.push(node(f, th, 2 * i + 1, 2 * i + 2, 1.0));
                }
                for _ in 0..16 {
                    nodes.push(leaf((next() % 1_000_000) as f64 / 777_777.0 - 0.6, 1.0));
                }
                BoostTree { nodes }
            })
            .collect();
        let e = Ensemble {
            base_margin: 0.3,
            trees,
            params: BoostParams::default(),
        };
        let option_of = [Some(0), Some(0), Some(0), Some(1), None, None];
        let choices = [4, 3];
        let value = |c: usize, k: usize| -> f64 {
            if c < 3 {
                f64::from(u8::from(c == k - 1))
            } else {
                f64::from(u8::from(k == 1))
            }
        };
        let opts = Options {
            option_of: &option_of,
            choices: &choices,
            value: &value,
        };
        for row in [
            [0.0, 1.0, 0.0, 1.0, 0.3, -0.4],
            [0.0, 0.0, 0.0, 0.0, f64::NAN, 0.9],
        ] {
            let tables = e.choice_tables(&row, &opts, 1024, 1 << 20).unwrap();
            for a in 0..4 {
                for b in 0..3 {
                    let mut changed = row;
                    if a > 0 {
                        for (c, v) in changed.iter_mut().enumerate().take(3) {
                            *v = value(c, a);
                        }
                    }
                    if b > 0 {
                        changed[3] = value(3, b);
                    }
                    let exact = e.margin(&changed);
                    let fast = tables.margin(&[a, b]);
                    assert!((fast - exact).abs() < 1e-12, "{a} {b}: {fast} vs {exact}");
                    let same = tables.exact_margin(&[a, b]);
                    assert_eq!(same.to_bits(), exact.to_bits(), "{a} {b}");
                }
            }
            assert_eq!(tables.margin(&[0, 0]).to_bits(), e.margin(&row).to_bits());
        }
        // a table larger than allowed: no tables
        let row = [0.0; 6];
        assert!(e.choice_tables(&row, &opts, 2, 1 << 20).is_none());
        // more entries in all than allowed: no tables
        assert!(e.choice_tables(&row, &opts, 1024, 40).is_none());
    }
}
