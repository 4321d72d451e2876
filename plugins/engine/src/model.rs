//! A model that is nothing but a tree ensemble in exchange form: what
//! `tessera import` makes of an XGBoost or LightGBM model (and what any
//! tree-ensemble transformation may produce). It predicts through the
//! engine; its bytes are the ensemble's byte form followed by a JSON
//! summary of where it came from.

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task,
    bytes::{ByteReader, put_u32},
    ir::{Combine, Link, ModelIr, TREES_MAGIC, TreeEnsemble},
    plugin::ModelImpl,
};

use crate::engine::Engine;

/// A compiled tree ensemble with its origin.
#[derive(Clone, Debug)]
pub struct IrModel {
    ensemble: TreeEnsemble,
    origin: Value,
    engine: Engine,
}

impl IrModel {
    /// Compiles `ensemble`; `origin` describes where it came from (kept,
    /// and shown in the summary).
    ///
    /// # Errors
    /// An ensemble the engine refuses.
    pub fn new(ensemble: TreeEnsemble, origin: Value) -> Result<Self, PluginError> {
        let engine = Engine::new(&ensemble)?;
        Ok(Self {
            ensemble,
            origin,
            engine,
        })
    }

    /// Whether `bytes` are an [`IrModel`]'s (rather than a plugin's own
    /// format).
    pub fn recognizes(bytes: &[u8]) -> bool {
        bytes.starts_with(TREES_MAGIC)
    }

    /// Reads what [`ModelImpl::to_bytes`] wrote, compiling the trees.
    ///
    /// # Errors
    /// Damaged bytes or an ensemble the engine refuses.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PluginError> {
        let (ensemble, used) = TreeEnsemble::from_bytes(bytes)?;
        let mut r = ByteReader::new(&bytes[used..], "tree ensemble");
        let text = r.text("origin")?;
        r.finish()?;
        let origin = serde_json::from_str(text)
            .map_err(|e| r.corrupt(format!("origin is not JSON: {e}")))?;
        Self::new(ensemble, origin)
    }

    /// The bytes of an [`IrModel`] of `ensemble` and `origin`, without
    /// compiling the trees (whoever loads the bytes compiles, and so checks,
    /// them).
    ///
    /// # Errors
    /// More trees, nodes or values than the byte form counts.
    pub fn encode(ensemble: &TreeEnsemble, origin: &Value) -> Result<Vec<u8>, PluginError> {
        let mut out = ensemble.to_bytes()?;
        let origin = origin.to_string();
        put_u32(&mut out, origin.len(), "tree ensemble", "origin")?;
        out.extend_from_slice(origin.as_bytes());
        Ok(out)
    }

    /// The compiled ensemble.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl ModelImpl for IrModel {
    fn task(&self) -> Task {
        match self.engine.n_classes() {
            0 => Task::regression_targets(self.ensemble.n_outputs),
            c => Task::classification(c as u32),
        }
    }

    fn n_features(&self) -> usize {
        self.engine.n_features()
    }

    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        Ok(self.engine.labels(&self.engine.raw(ctx, x)?))
    }

    fn predict_proba(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        if !self.engine.is_classifier() {
            return Err(PluginError::unsupported(
                "a regression model does not predict probabilities",
            ));
        }
        let proba = self.engine.proba(&self.engine.raw(ctx, x)?);
        Ok(Matrix::new(proba, x.rows(), self.engine.n_proba()))
    }

    fn describe(&self) -> Value {
        let e = &self.ensemble;
        json!({
            "model": "tree_ensemble",
            "origin": self.origin,
            "task": self.task().name(),
            "n_classes": if e.n_classes > 0 { json!(e.n_classes) } else { Value::Null },
            "n_features": e.n_features,
            "n_trees": e.trees.len(),
            "combine": match e.combine {
                Combine::Sum => "sum",
                Combine::Mean => "mean",
                Combine::Vote => "vote",
            },
            "link": match e.link {
                Link::Identity => "identity",
                Link::Sigmoid => "sigmoid",
                Link::Softmax => "softmax",
            },
            "base_score": e.base_score.as_slice(),
            "total_nodes": self.engine.n_nodes(),
            "max_depth": self.engine.max_depth(),
            "compiled_bytes": self.engine.size_bytes(),
        })
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Self::encode(&self.ensemble, &self.origin)
    }

    fn to_ir(&self) -> Option<ModelIr> {
        Some(ModelIr::Trees(self.ensemble.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::ir::{Tree, TreeNode};

    fn stump() -> TreeEnsemble {
        let nodes = vec![
            TreeNode {
                feature: 0,
                threshold: 0.0,
                left: 1,
                right: 2,
                value: 0,
                missing_left: 0,
            },
            TreeNode::leaf(0),
            TreeNode::leaf(1),
        ];
        TreeEnsemble {
            n_features: 2,
            n_outputs: 1,
            n_classes: 2,
            combine: Combine::Sum,
            link: Link::Sigmoid,
            base_score: vec![0.5].into(),
            trees: vec![Tree {
                nodes: nodes.into(),
                values: vec![-1.0, 2.0].into(),
                output: Tree::ALL_OUTPUTS,
            }]
            .into(),
        }
    }

    #[test]
    fn round_trips_and_predicts() {
        let m = IrModel::new(stump(), json!({"imported_from": "test"})).unwrap();
        let bytes = m.to_bytes().unwrap();
        assert!(IrModel::recognizes(&bytes));
        let back = IrModel::from_bytes(&bytes).unwrap();
        assert_eq!(back.describe(), m.describe());
        let ctx = tessera_core::NullContext::default();
        let x = [-1.0, 0.0, 1.0, 0.0, f32::NAN, 0.0];
        let x = MatrixRef::new(&x, 3, 2).unwrap();
        assert_eq!(back.predict(&ctx.as_ref(), x).unwrap(), vec![0.0, 1.0, 1.0]);
        let p = back.predict_proba(&ctx.as_ref(), x).unwrap();
        let want = 1.0 / (1.0 + (-(0.5f64 - 1.0)).exp());
        assert!((f64::from(p.data[1]) - want).abs() < 1e-7);
    }

    #[test]
    fn damaged_bytes_are_refused() {
        let m = IrModel::new(stump(), json!({})).unwrap();
        let bytes = m.to_bytes().unwrap();
        for cut in 0..bytes.len() {
            assert!(IrModel::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(IrModel::from_bytes(&extra).is_err());
    }
}
