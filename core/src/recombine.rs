//! Recombining a decomposed model: the roles decomposers give their parts
//! ([`SubModel::role`](crate::traits::SubModel)), and the arithmetic that
//! joins the parts' answers into the whole model's.
//!
//! | role | the part answers | recombination |
//! |---|---|---|
//! | `sum:<link>` | raw scores (regression outputs) | add the parts' outputs, then apply `<link>` (`identity`, `sigmoid`, `softmax`) |
//! | `weighted:<w>` | what the whole model answers (probabilities or values) | add the parts' answers times their `w` |
//! | `stage:<i>` | stage `i` of a network; stage `i + 1` takes its outputs | run the stages in order |
//! | `class:<c>:<link>` | class `c`'s column (a raw score or a probability) | put the columns side by side, then apply `<link>` |

use crate::{error::PluginError, ir::Link};

/// A parsed role.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Role {
    /// Raw scores to add up, then the link.
    Sum(Link),
    /// The whole model's kind of answer, weighted.
    Weighted(f64),
    /// Stage `i` of a pipeline.
    Stage(usize),
    /// Class `c`'s column, then the link across the columns.
    Class(usize, Link),
}

/// The name of a link in roles.
pub fn link_name(l: Link) -> &'static str {
    match l {
        Link::Identity => "identity",
        Link::Sigmoid => "sigmoid",
        Link::Softmax => "softmax",
    }
}

fn link(s: &str) -> Option<Link> {
    match s {
        "identity" => Some(Link::Identity),
        "sigmoid" => Some(Link::Sigmoid),
        "softmax" => Some(Link::Softmax),
        _ => None,
    }
}

impl Role {
    /// The role as the part carries it.
    pub fn to_text(self) -> String {
        match self {
            Self::Sum(l) => format!("sum:{}", link_name(l)),
            Self::Weighted(w) => format!("weighted:{w:?}"),
            Self::Stage(i) => format!("stage:{i}"),
            Self::Class(c, l) => format!("class:{c}:{}", link_name(l)),
        }
    }

    /// Reads a role.
    ///
    /// # Errors
    /// Text that is not one of the forms above.
    pub fn parse(text: &str) -> Result<Self, PluginError> {
        let bad = || PluginError::input(format!("unknown sub-model role `{text}`"));
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            ["sum", l] => link(l).map(Self::Sum).ok_or_else(bad),
            ["weighted", w] => w
                .parse::<f64>()
                .ok()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .map(Self::Weighted)
                .ok_or_else(bad),
            ["stage", i] => i.parse().map(Self::Stage).map_err(|_| bad()),
            ["class", c, l] => match (c.parse(), link(l)) {
                (Ok(c), Some(l)) => Ok(Self::Class(c, l)),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

/// How a decomposed model's parts join, read from their roles.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Add the parts' raw outputs, then the link.
    Sum(Link),
    /// Add the parts' answers, each times its weight.
    Weighted(Vec<f64>),
    /// Run the parts in order, each on the previous one's outputs.
    Pipeline,
    /// The parts' single columns side by side, then the link.
    Classes(Link),
}

impl Plan {
    /// The plan of parts with these roles, in part order.
    ///
    /// # Errors
    /// No parts, an unknown role, roles of different kinds, links that
    /// differ, or stages or classes out of order.
    pub fn from_roles<S: AsRef<str>>(roles: &[S]) -> Result<Self, PluginError> {
        let parsed = roles
            .iter()
            .map(|r| Role::parse(r.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let mixed = || {
            PluginError::input(format!(
                "sub-model roles do not make one plan: {}",
                roles
                    .iter()
                    .map(AsRef::as_ref)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        };
        let first = *parsed
            .first()
            .ok_or_else(|| PluginError::input("no sub-models"))?;
        Ok(match first {
            Role::Sum(l) => {
                if parsed.iter().any(|r| *r != Role::Sum(l)) {
                    return Err(mixed());
                }
                Self::Sum(l)
            }
            Role::Weighted(_) => Self::Weighted(
                parsed
                    .iter()
                    .map(|r| match r {
                        Role::Weighted(w) => Ok(*w),
                        _ => Err(mixed()),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Role::Stage(_) => {
                if parsed.iter().enumerate().any(|(i, r)| *r != Role::Stage(i)) {
                    return Err(mixed());
                }
                Self::Pipeline
            }
            Role::Class(_, l) => {
                if parsed
                    .iter()
                    .enumerate()
                    .any(|(i, r)| *r != Role::Class(i, l))
                {
                    return Err(mixed());
                }
                Self::Classes(l)
            }
        })
    }

    /// Joins the parts' answers (`outputs[i]` row-major, `rows` rows;
    /// not for a pipeline, whose parts run one after the other). The
    /// result is the whole model's answer: class probabilities (a
    /// sigmoid gives two columns, `1 - p` and `p`) or regression values.
    ///
    /// # Errors
    /// A pipeline, or answers whose sizes do not agree.
    pub fn join(&self, outputs: &[Vec<f32>], rows: usize) -> Result<Vec<f64>, PluginError> {
        let bad = |why: String| Err(PluginError::input(format!("cannot join the parts: {why}")));
        if outputs.is_empty() || rows == 0 {
            return Ok(Vec::new());
        }
        let widths: Vec<usize> = outputs.iter().map(|o| o.len() / rows).collect();
        if outputs
            .iter()
            .zip(&widths)
            .any(|(o, w)| o.len() != w * rows || *w == 0)
        {
            return bad(format!(
                "answers of {widths:?} values per row for {rows} rows"
            ));
        }
        let (joined, link) = match self {
            Self::Pipeline => return bad("a pipeline runs its stages in order".into()),
            Self::Sum(_) | Self::Weighted(_) if widths.iter().any(|w| *w != widths[0]) => {
                return bad(format!("parts answer {widths:?} values per row"));
            }
            Self::Sum(l) => {
                let mut acc = vec![0.0f64; outputs[0].len()];
                for o in outputs {
                    acc.iter_mut().zip(o).for_each(|(a, v)| *a += f64::from(*v));
                }
                (acc, *l)
            }
            Self::Weighted(w) => {
                if w.len() != outputs.len() {
                    return bad(format!("{} weights for {} parts", w.len(), outputs.len()));
                }
                let mut acc = vec![0.0f64; outputs[0].len()];
                for (o, w) in outputs.iter().zip(w) {
                    acc.iter_mut()
                        .zip(o)
                        .for_each(|(a, v)| *a += w * f64::from(*v));
                }
                (acc, Link::Identity)
            }
            Self::Classes(l) => {
                if widths.iter().any(|w| *w != 1) {
                    return bad(format!("class parts answer {widths:?} values per row"));
                }
                let k = outputs.len();
                let mut acc = vec![0.0f64; rows * k];
                for (c, o) in outputs.iter().enumerate() {
                    for (r, v) in o.iter().enumerate() {
                        acc[r * k + c] = f64::from(*v);
                    }
                }
                (acc, *l)
            }
        };
        let k = joined.len() / rows;
        Ok(apply_link(joined, k, link))
    }
}

/// Applies `link` to rows of `width` values: nothing (identity), a
/// sigmoid (one value per row becomes two probabilities, `1 - p` and
/// `p`), or a softmax across each row.
pub fn apply_link(mut v: Vec<f64>, width: usize, link: Link) -> Vec<f64> {
    match link {
        Link::Identity => v,
        Link::Sigmoid => v
            .iter()
            .flat_map(|&z| {
                let p = 1.0 / (1.0 + (-z).exp());
                [1.0 - p, p]
            })
            .collect(),
        Link::Softmax => {
            for row in v.chunks_exact_mut(width.max(1)) {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for x in row.iter_mut() {
                    *x = (*x - max).exp();
                    sum += *x;
                }
                row.iter_mut().for_each(|x| *x /= sum);
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_nonsense_is_refused() {
        for r in [
            Role::Sum(Link::Softmax),
            Role::Weighted(0.1 + 0.2),
            Role::Stage(3),
            Role::Class(7, Link::Identity),
        ] {
            assert_eq!(Role::parse(&r.to_text()).unwrap(), r);
        }
        for bad in [
            "",
            "sum",
            "sum:tanh",
            "weighted:-1",
            "stage:x",
            "class:1",
            "vote",
        ] {
            assert!(Role::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plans_join_parts_as_their_roles_say() {
        let p = Plan::from_roles(&["sum:sigmoid", "sum:sigmoid"]).unwrap();
        let j = p.join(&[vec![0.5, -1.0], vec![-0.5, 1.0]], 2).unwrap();
        assert_eq!(j, vec![0.5, 0.5, 0.5, 0.5]);
        let p = Plan::from_roles(&["weighted:0.25", "weighted:0.75"]).unwrap();
        let j = p.join(&[vec![1.0, 0.0], vec![0.0, 1.0]], 1).unwrap();
        assert_eq!(j, vec![0.25, 0.75]);
        let p = Plan::from_roles(&["class:0:identity", "class:1:identity"]).unwrap();
        let j = p.join(&[vec![0.1, 0.2], vec![0.9, 0.8]], 2).unwrap();
        assert_eq!(j.len(), 4);
        assert!(
            (j[1] - 0.9).abs() < 1e-7 && (j[2] - 0.2).abs() < 1e-7,
            "{j:?}"
        );
        let p = Plan::from_roles(&["class:0:softmax", "class:1:softmax"]).unwrap();
        let j = p.join(&[vec![0.0], vec![0.0]], 1).unwrap();
        assert_eq!(j, vec![0.5, 0.5]);
        assert_eq!(
            Plan::from_roles(&["stage:0", "stage:1"]).unwrap(),
            Plan::Pipeline
        );
        for bad in [
            &["stage:1", "stage:0"][..],
            &["sum:softmax", "sum:sigmoid"],
            &["sum:identity", "weighted:1.0"],
            &["class:1:softmax"],
            &[],
        ] {
            assert!(Plan::from_roles(bad).is_err(), "{bad:?}");
        }
        assert!(
            Plan::Sum(Link::Identity)
                .join(&[vec![1.0], vec![1.0, 2.0]], 1)
                .is_err()
        );
    }
}
