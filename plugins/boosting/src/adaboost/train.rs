//! Fitting: the boosting rounds. Each round trains one member through the
//! host with the whole thread budget, on the training rows themselves with
//! the current weights (SAMME) or on a weighted resample of them
//! (AdaBoost.R2), predicts the training rows with it once, and reweights
//! the rows (see [`boost`]).

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, MatrixRef, ModelBox, PluginError, TrainData,
    abi_stable::std_types::{ROption, RSlice},
    context::level,
    params::Params,
    plugin::{
        LearnerImpl, ModelImpl, SubContext,
        members::{BaseLearners, Estimator, fit_member},
        seeds::{SplitMix, derive_seed, entropy_seed, member_seed},
    },
};

use super::{
    boost::{self, Round, RowWeights},
    model::{AdaBoostModel, predict_member},
    params::{AdaBoostParams, LEARNER, Loss},
};

/// Tag of the stream that draws round `i`'s resample (regression).
const BOOTSTRAP_TAG: u64 = 4;

/// Builds the learner from checked parameters.
///
/// # Errors
/// Parameters that do not go together (see [`AdaBoostParams::from_params`]).
pub fn create(p: Params) -> Result<Box<dyn LearnerImpl>, PluginError> {
    Ok(Box::new(AdaBoostLearner {
        params: AdaBoostParams::from_params(&p)?,
    }))
}

/// The AdaBoost learner.
pub struct AdaBoostLearner {
    /// Its parameters.
    pub params: AdaBoostParams,
}

/// Why boosting stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every one of `n_estimators` members was fitted.
    Completed,
    /// A member fitted the training rows perfectly.
    PerfectFit,
    /// A member was no better than chance; it was left out.
    NoBetterThanChance,
    /// The row weights overflowed.
    WeightsOverflow,
    /// The row weights summed to zero.
    WeightsVanished,
}

impl Stop {
    /// The name shown in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Self::Completed => "n_estimators",
            Self::PerfectFit => "perfect_fit",
            Self::NoBetterThanChance => "no_better_than_chance",
            Self::WeightsOverflow => "weights_overflow",
            Self::WeightsVanished => "weights_vanished",
        }
    }
}

/// What one fit shares across its rounds.
struct Fit<'a> {
    data: &'a TrainData<'a>,
    est: &'a Estimator,
    learners: &'a BaseLearners,
    seed: u64,
    learning_rate: f64,
    loss: Loss,
}

impl Fit<'_> {
    fn log(ctx: &HostContextRef<'_>, lvl: u8, message: String) {
        ctx.log(lvl, message.as_str().into());
    }

    /// A SAMME round: member `i` trains on every row with the current
    /// weights; `weights` is scratch space for them.
    fn samme(
        &self,
        i: usize,
        ctx: HostContextRef<'_>,
        rw: &mut RowWeights,
        weights: &mut Vec<f32>,
        last: bool,
    ) -> Result<(ModelBox, Round), PluginError> {
        let data = self.data;
        rw.for_member(weights);
        let view = TrainData {
            weights: ROption::RSome(RSlice::from_slice(weights)),
            valid: ROption::RNone,
            ..*data
        };
        let model = fit_member(
            LEARNER,
            i,
            &self.est.name,
            self.learners.get(i),
            ctx.sabi_reborrow(),
            view,
        )?;
        let pred = predict_member(i, &model, ctx, data.x, data.task)?;
        let incorrect: Vec<bool> = pred
            .iter()
            .zip(data.y.iter())
            .map(|(p, y)| p != y)
            .collect();
        let round = boost::samme(
            rw,
            &incorrect,
            data.task.n_classes,
            self.learning_rate,
            last,
        );
        Ok((model, round))
    }

    /// An AdaBoost.R2 round: member `i` trains, without weights, on as many
    /// rows drawn with replacement in proportion to the current weights.
    fn r2(
        &self,
        i: usize,
        ctx: HostContextRef<'_>,
        rw: &mut RowWeights,
        last: bool,
    ) -> Result<(ModelBox, Round), PluginError> {
        let data = self.data;
        let (n, cols) = (data.x.rows(), data.x.cols());
        let mut rng = SplitMix::new(derive_seed(derive_seed(self.seed, i as u64), BOOTSTRAP_TAG));
        let rows = boost::weighted_bootstrap(&rw.w, &mut rng);
        let mut x = Vec::with_capacity(n * cols);
        for &r in &rows {
            x.extend_from_slice(data.x.row(r));
        }
        let y: Vec<f32> = rows.iter().map(|&r| data.y[r]).collect();
        let view = TrainData {
            x: MatrixRef::new(&x, n, cols)?,
            y: RSlice::from_slice(&y),
            weights: ROption::RNone,
            valid: ROption::RNone,
            ..*data
        };
        let model = fit_member(
            LEARNER,
            i,
            &self.est.name,
            self.learners.get(i),
            ctx.sabi_reborrow(),
            view,
        )?;
        drop(x);
        let pred = predict_member(i, &model, ctx, data.x, data.task)?;
        if let Some(r) = pred.iter().position(|p| !p.is_finite()) {
            return Err(PluginError::internal(format!(
                "{LEARNER}: member {i} (`{}`) predicted {} for training row {r}",
                self.est.name, pred[r]
            )));
        }
        let abs_error: Vec<f64> = pred
            .iter()
            .zip(data.y.iter())
            .map(|(&p, &y)| (f64::from(p) - f64::from(y)).abs())
            .collect();
        let round = boost::r2(rw, &abs_error, self.loss, self.learning_rate, last);
        Ok((model, round))
    }
}

impl LearnerImpl for AdaBoostLearner {
    fn fit(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let p = &self.params;
        let classify = data.task.is_classification();
        let loss = p.loss_for(classify)?;
        let est = p.estimator_for(classify);
        let seed = p.random_state.unwrap_or_else(entropy_seed);
        let n = p.n_estimators;
        let learners = BaseLearners::create(ctx, LEARNER, &est, n, |i| member_seed(seed, i))?;
        let mut rw = RowWeights::new(
            data.x.rows(),
            data.weights.into_option().map(|w| w.as_slice()),
        )?;
        Fit::log(
            ctx,
            level::DEBUG,
            format!(
                "{LEARNER}: up to {n} members of `{}` ({}) on {} rows x {} columns, {} threads \
                 each",
                est.name,
                if classify { "SAMME" } else { "AdaBoost.R2" },
                data.x.rows(),
                data.x.cols(),
                ctx.threads()
            ),
        );
        let fit = Fit {
            data,
            est: &est,
            learners: &learners,
            seed,
            learning_rate: p.learning_rate,
            loss,
        };
        // Members run one after another, each with the whole budget.
        let sub = SubContext::new(ctx, ctx.threads());
        let mut members = Vec::new();
        let mut weights = Vec::new();
        let mut errors = Vec::new();
        let mut scratch = Vec::new();
        let mut stop = Stop::Completed;
        for i in 0..n {
            if ctx.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            rw.clip();
            let last = i + 1 == n;
            let (model, round) = if classify {
                fit.samme(i, sub.as_ref(), &mut rw, &mut scratch, last)?
            } else {
                fit.r2(i, sub.as_ref(), &mut rw, last)?
            };
            ctx.progress(i as u64 + 1, n as u64);
            match round {
                Round::Perfect => {
                    members.push(model);
                    weights.push(1.0);
                    errors.push(0.0);
                    stop = Stop::PerfectFit;
                    break;
                }
                Round::Useless { error } => {
                    if members.is_empty() {
                        if classify {
                            return Err(PluginError::input(format!(
                                "{LEARNER}: the first member (`{}`) is no better than chance \
                                 (weighted error {error:.4} >= 1 - 1/{}), so no ensemble can be \
                                 fit; try a stronger estimator",
                                est.name, data.task.n_classes
                            )));
                        }
                        // scikit-learn keeps a lone first regressor, with
                        // weight 0.
                        members.push(model);
                        weights.push(0.0);
                        errors.push(error);
                    }
                    stop = Stop::NoBetterThanChance;
                    break;
                }
                Round::Boost { weight, error } => {
                    members.push(model);
                    weights.push(weight);
                    errors.push(error);
                }
            }
            let sum = rw.sum();
            if !sum.is_finite() {
                Fit::log(
                    ctx,
                    level::WARN,
                    format!(
                        "{LEARNER}: the row weights overflowed after member {i}, so boosting \
                         stopped there; try a lower learning_rate"
                    ),
                );
                stop = Stop::WeightsOverflow;
                break;
            }
            if sum <= 0.0 {
                stop = Stop::WeightsVanished;
                break;
            }
            if !last {
                rw.normalise(sum);
            }
        }
        ctx.progress(n as u64, n as u64);
        if stop != Stop::Completed {
            Fit::log(
                ctx,
                level::DEBUG,
                format!(
                    "{LEARNER}: stopped after {} of {n} members ({})",
                    members.len(),
                    stop.name()
                ),
            );
        }
        let mut info = json!({
            "algorithm": if classify { "SAMME" } else { "AdaBoost.R2" },
            "estimator": est.name,
            "estimator_params": Value::Object(est.params.clone()),
            "n_estimators": n,
            "learning_rate": p.learning_rate,
            "random_state": seed,
            "member_seeds": learners.seeded(),
            "stopped": stop.name(),
        });
        if !classify {
            info["loss"] = json!(loss.name());
        }
        AdaBoostModel::new(data.task, data.x.cols(), info, members, weights, errors)
            .map(|m| Box::new(m) as Box<dyn ModelImpl>)
    }
}
