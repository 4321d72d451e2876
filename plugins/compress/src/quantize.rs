//! `quantize`: tree ensembles with thresholds as per-feature bin indices
//! and compact leaves (tessera-qtrees), networks with int8/int16 weights
//! and calibrated activations on integer kernels (tessera-qnet).

use tessera_core::{
    CompressData, HostContextRef, MatrixRef, PluginError,
    context::level,
    ir::{Combine, ModelIr},
    params::Params,
    plugin::CompressorImpl,
};

struct Quantize {
    bits: u32,
    leaves: String,
    calibration_rows: usize,
}

/// Builds the compressor from checked parameters.
///
/// # Errors
/// None beyond the schema's.
pub fn create(p: Params) -> Result<Box<dyn CompressorImpl>, PluginError> {
    Ok(Box::new(Quantize {
        bits: p.usize("bits") as u32,
        leaves: p.str("leaves").to_string(),
        calibration_rows: p.usize("calibration_rows"),
    }))
}

impl CompressorImpl for Quantize {
    fn compress(
        &self,
        ctx: &HostContextRef<'_>,
        model: ModelIr,
        data: &CompressData<'_>,
    ) -> Result<ModelIr, PluginError> {
        let (family, bytes, summary) = match model {
            ModelIr::Trees(ens) => {
                // Boosted sums need fine leaves (raw scores add up); a
                // forest's class probabilities average out an i8 step.
                let leaves = match self.leaves.as_str() {
                    "auto" if ens.combine == Combine::Sum || ens.n_classes == 0 => "i16",
                    "auto" => "i8",
                    other => other,
                };
                let opts = tessera_qtrees::Options {
                    bits: self.bits,
                    leaves: tessera_qtrees::LeafFormat::parse(leaves)?,
                };
                let q = tessera_qtrees::QuantizedTrees::quantize(&ens, &opts)?;
                (tessera_qtrees::FAMILY, q.to_bytes()?, q.describe())
            }
            ModelIr::Network(net) => {
                data.validate(net.n_features())?;
                let sample = data.any().map(|h| spread_rows(h.x, self.calibration_rows));
                let calibration = sample
                    .as_ref()
                    .map(|(x, rows)| MatrixRef::new(x, *rows, net.n_features()))
                    .transpose()?;
                let opts = tessera_qnet::Options { bits: self.bits };
                let q = tessera_qnet::QuantizedNetwork::quantize(&net, &opts, calibration)?;
                (tessera_qnet::FAMILY, q.to_bytes()?, q.describe())
            }
            ModelIr::Opaque { family, .. } => {
                return Err(PluginError::unsupported(format!(
                    "quantize works on tree ensembles and dense networks; this model is a \
                     `{family}`"
                )));
            }
        };
        ctx.log(level::DEBUG, format!("quantize: {summary}").as_str().into());
        Ok(ModelIr::Opaque {
            family: family.into(),
            bytes: bytes.into(),
        })
    }
}

/// At most `n` rows of `x`, spread evenly over it (a file sorted by some
/// column still gives a sample of every part), and their count.
fn spread_rows(x: MatrixRef<'_>, n: usize) -> (Vec<f32>, usize) {
    let rows = x.rows();
    let take = rows.min(n.max(1));
    let mut out = Vec::with_capacity(take * x.cols());
    for i in 0..take {
        out.extend_from_slice(x.row(i * rows / take));
    }
    (out, take)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_rows_take_every_part_of_the_file() {
        let data: Vec<f32> = (0..20).map(|v| v as f32).collect();
        let x = MatrixRef::new(&data, 10, 2).unwrap();
        let (s, n) = spread_rows(x, 4);
        assert_eq!(n, 4);
        let firsts: Vec<f32> = s.chunks(2).map(|r| r[0]).collect();
        assert_eq!(firsts, vec![0.0, 4.0, 10.0, 14.0]);
        assert_eq!(spread_rows(x, 50).1, 10);
    }
}
