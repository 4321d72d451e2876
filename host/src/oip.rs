//! The Open Inference Protocol v2 wire format: inference requests (JSON,
//! or JSON followed by binary tensors), and the answers written back.

use std::fmt;

use serde::{
    Deserialize, Deserializer,
    de::{self, SeqAccess, Visitor},
};
use serde_json::{Map, Value};

/// The header that splits a body into its JSON part and binary tensors
/// (the binary tensor data extension).
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// A client's mistake in a request: the HTTP status and one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// 400, 404, 413, ...
    pub status: u16,
    /// What is wrong and where.
    pub message: String,
}

impl RequestError {
    /// A 400 Bad Request.
    pub fn bad(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RequestError {}

/// An inference request's JSON part.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferRequest {
    /// Echoed back in the answer.
    #[serde(default)]
    pub id: Option<String>,
    /// Request parameters (`binary_data_output` is read).
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// The input tensors.
    pub inputs: Vec<InputTensor>,
    /// The outputs wanted (all when absent).
    #[serde(default)]
    pub outputs: Option<Vec<RequestedOutput>>,
}

/// One input tensor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputTensor {
    /// The input's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// FP32, FP64, INT32 or INT64.
    pub datatype: String,
    /// `binary_data_size` when the data follows the JSON.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// The values, row-major, nested or flat (`null` is a missing value).
    #[serde(default)]
    pub data: Option<Flat>,
}

/// A wanted output.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedOutput {
    /// Its name.
    pub name: String,
    /// `binary_data = true` asks for it in binary.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
}

/// Tensor data flattened while it is parsed: nested arrays of numbers,
/// row-major; `null` becomes NaN (a missing value).
#[derive(Debug, Default)]
pub struct Flat {
    /// The values.
    pub values: Vec<f64>,
    /// A value that was not a number (its JSON type), if any.
    pub not_number: Option<&'static str>,
}

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(&'a mut Flat);
        impl<'de> de::DeserializeSeed<'de> for V<'_> {
            type Value = ();
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_any(self)
            }
        }
        impl<'de> Visitor<'de> for V<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("numbers, or (nested) arrays of numbers")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
                self.0.values.push(v);
                Ok(())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
                self.0.values.push(v as f64);
                Ok(())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
                self.0.values.push(v as f64);
                Ok(())
            }
            fn visit_unit<E: de::Error>(self) -> Result<(), E> {
                self.0.values.push(f64::NAN);
                Ok(())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
                self.0.not_number.get_or_insert("a boolean");
                Ok(())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
                self.0.not_number.get_or_insert("a string");
                Ok(())
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
                self.0.not_number.get_or_insert("an object");
                while m.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
                while s.next_element_seed(V(&mut *self.0))?.is_some() {}
                Ok(())
            }
        }
        let mut flat = Flat::default();
        d.deserialize_any(V(&mut flat))?;
        Ok(flat)
    }
}

/// The element datatypes accepted for inputs, with their byte sizes.
fn element_size(datatype: &str) -> Option<usize> {
    match datatype {
        "FP32" | "INT32" => Some(4),
        "FP64" | "INT64" => Some(8),
        _ => None,
    }
}

/// A parsed request: its JSON part, and the binary tensors after it.
pub struct Parsed {
    /// The JSON part.
    pub request: InferRequest,
    /// The bytes after the JSON part (binary tensors).
    pub binary: bytes::Bytes,
}

/// Splits and parses a request body; `json_len` is the
/// `Inference-Header-Content-Length` header, when present.
///
/// # Errors
/// Malformed JSON (with its line and column) or a length past the body.
pub fn parse(body: bytes::Bytes, json_len: Option<&str>) -> Result<Parsed, RequestError> {
    let (json, binary) = match json_len {
        None => (body.clone(), bytes::Bytes::new()),
        Some(n) => {
            let n: usize = n.trim().parse().map_err(|_| {
                RequestError::bad(format!(
                    "the Inference-Header-Content-Length header `{n}` is not a byte count"
                ))
            })?;
            if n > body.len() {
                return Err(RequestError::bad(format!(
                    "Inference-Header-Content-Length is {n} but the body has {} bytes",
                    body.len()
                )));
            }
            (body.slice(..n), body.slice(n..))
        }
    };
    let request: InferRequest = serde_json::from_slice(&json).map_err(|e| {
        RequestError::bad(format!("the request is not a valid inference request: {e}"))
    })?;
    Ok(Parsed { request, binary })
}

/// One input's values as f32 rows, checked against the `width` columns
/// the model takes; `offset` walks the binary section.
///
/// # Errors
/// A wrong datatype, shape or size, with the input's name.
pub fn rows_of(
    t: &InputTensor,
    width: usize,
    binary: &[u8],
    offset: &mut usize,
) -> Result<(usize, Vec<f32>), RequestError> {
    let name = &t.name;
    let Some(size) = element_size(&t.datatype) else {
        return Err(RequestError::bad(format!(
            "input `{name}`: datatype `{}` is not accepted (FP32, FP64, INT32 or INT64)",
            t.datatype
        )));
    };
    let rows = match t.shape.as_slice() {
        [n, w] if *n >= 0 && *w == width as i64 => *n as usize,
        [w] if *w == width as i64 => 1,
        _ => {
            return Err(RequestError::bad(format!(
                "input `{name}`: shape {:?} does not match [-1, {width}] (rows of {width} features)",
                t.shape
            )));
        }
    };
    let Some((count, bytes_needed)) = rows
        .checked_mul(width)
        .and_then(|c| Some((c, c.checked_mul(size)?)))
        .filter(|(_, b)| *b <= isize::MAX as usize)
    else {
        return Err(RequestError::bad(format!(
            "input `{name}`: shape {:?} is too large",
            t.shape
        )));
    };
    let binary_size = t
        .parameters
        .as_ref()
        .and_then(|p| p.get("binary_data_size"));
    let values: Vec<f32> = match (binary_size, &t.data) {
        (Some(_), Some(_)) => {
            return Err(RequestError::bad(format!(
                "input `{name}`: both `data` and `binary_data_size` are given"
            )));
        }
        (Some(n), None) => {
            let Some(n) = n.as_u64().map(|n| n as usize) else {
                return Err(RequestError::bad(format!(
                    "input `{name}`: binary_data_size {n} is not a byte count"
                )));
            };
            if n != bytes_needed {
                return Err(RequestError::bad(format!(
                    "input `{name}`: binary_data_size is {n} bytes, but shape {:?} of {} needs \
                     {bytes_needed}",
                    t.shape, t.datatype
                )));
            }
            let Some(bytes) = offset
                .checked_add(n)
                .and_then(|end| binary.get(*offset..end))
            else {
                return Err(RequestError::bad(format!(
                    "input `{name}`: the body ends before its {n} bytes of binary data"
                )));
            };
            *offset += n;
            decode(&t.datatype, bytes)
        }
        (None, Some(flat)) => {
            if let Some(what) = flat.not_number {
                return Err(RequestError::bad(format!(
                    "input `{name}`: `data` holds {what}; {} takes numbers",
                    t.datatype
                )));
            }
            if flat.values.len() != count {
                return Err(RequestError::bad(format!(
                    "input `{name}`: shape {:?} needs {count} values, `data` has {}",
                    t.shape,
                    flat.values.len()
                )));
            }
            if t.datatype.starts_with("INT")
                && let Some(v) = flat.values.iter().find(|v| v.fract() != 0.0 || v.is_nan())
            {
                return Err(RequestError::bad(format!(
                    "input `{name}`: {v} is not an integer, as {} needs",
                    t.datatype
                )));
            }
            flat.values.iter().map(|&v| v as f32).collect()
        }
        (None, None) => {
            return Err(RequestError::bad(format!(
                "input `{name}`: no `data` and no `binary_data_size`"
            )));
        }
    };
    Ok((rows, values))
}

/// Little-endian elements of `datatype` as f32.
fn decode(datatype: &str, bytes: &[u8]) -> Vec<f32> {
    match datatype {
        "FP32" => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        "INT32" => bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        "FP64" => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()) as f32)
            .collect(),
        _ => bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()) as f32)
            .collect(),
    }
}

/// `v` as a JSON array. Values that are f32 (what most models compute)
/// are written as the shortest f32 text (0.01, not 0.009999999776482582);
/// non-finite values, which the models do not produce, as null.
fn write_values(json: &mut Vec<u8>, v: &[f64]) {
    json.push(b'[');
    for (i, &x) in v.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        let narrow = x as f32;
        let _ = if f64::from(narrow) == x {
            serde_json::to_writer(&mut *json, &narrow)
        } else {
            serde_json::to_writer(&mut *json, &x)
        };
    }
    json.push(b']');
}

/// One output tensor of an answer.
pub enum OutputData<'a> {
    /// FP64 values.
    Values(&'a [f64]),
    /// BYTES (strings).
    Labels(Vec<&'a str>),
}

/// An output tensor to write.
pub struct Output<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub data: OutputData<'a>,
    /// Written as binary after the JSON.
    pub binary: bool,
}

/// Writes an answer: the JSON, and the binary tensors after it; returns
/// the body and the JSON part's length when there are binary tensors.
pub fn write_answer(
    model: &str,
    version: &str,
    id: Option<&str>,
    parameters: Option<&Value>,
    outputs: &[Output<'_>],
) -> (Vec<u8>, Option<usize>) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail, nor can serializing strings and
    // numbers; the results are ignored.
    let mut json: Vec<u8> = Vec::with_capacity(96 + outputs.len() * 64);
    let mut binary: Vec<u8> = Vec::new();
    json.extend_from_slice(b"{\"model_name\":");
    let _ = serde_json::to_writer(&mut json, model);
    json.extend_from_slice(b",\"model_version\":");
    let _ = serde_json::to_writer(&mut json, version);
    if let Some(id) = id {
        json.extend_from_slice(b",\"id\":");
        let _ = serde_json::to_writer(&mut json, id);
    }
    if let Some(p) = parameters {
        json.extend_from_slice(b",\"parameters\":");
        let _ = serde_json::to_writer(&mut json, p);
    }
    json.extend_from_slice(b",\"outputs\":[");
    for (i, o) in outputs.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(b"{\"name\":");
        let _ = serde_json::to_writer(&mut json, o.name);
        json.extend_from_slice(match o.data {
            OutputData::Values(_) => b",\"datatype\":\"FP64\",\"shape\":",
            OutputData::Labels(_) => b",\"datatype\":\"BYTES\",\"shape\":",
        });
        let _ = serde_json::to_writer(&mut json, &o.shape);
        if o.binary {
            let start = binary.len();
            match &o.data {
                OutputData::Values(v) => {
                    for x in *v {
                        binary.extend_from_slice(&x.to_le_bytes());
                    }
                }
                OutputData::Labels(l) => {
                    for s in l {
                        binary.extend_from_slice(&(s.len() as u32).to_le_bytes());
                        binary.extend_from_slice(s.as_bytes());
                    }
                }
            }
            let _ = write!(
                json,
                ",\"parameters\":{{\"binary_data_size\":{}}}}}",
                binary.len() - start
            );
        } else {
            json.extend_from_slice(b",\"data\":");
            let _ = match &o.data {
                OutputData::Values(v) => {
                    write_values(&mut json, v);
                    Ok(())
                }
                OutputData::Labels(l) => serde_json::to_writer(&mut json, l),
            };
            json.push(b'}');
        }
    }
    json.extend_from_slice(b"]}");
    if outputs.iter().any(|o| o.binary) {
        let n = json.len();
        json.extend_from_slice(&binary);
        (json, Some(n))
    } else {
        (json, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(json: &str) -> InputTensor {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn nested_and_flat_data_give_the_same_rows() {
        let nested =
            tensor(r#"{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5.5,null]]}"#);
        let flat =
            tensor(r#"{"name":"x","shape":[2,3],"datatype":"FP64","data":[1,2,3,4,5.5,null]}"#);
        let (n1, a) = rows_of(&nested, 3, &[], &mut 0).unwrap();
        let (n2, b) = rows_of(&flat, 3, &[], &mut 0).unwrap();
        assert_eq!((n1, n2), (2, 2));
        assert_eq!(a[..5], b[..5]);
        assert!(a[5].is_nan() && b[5].is_nan());
    }

    #[test]
    fn shape_datatype_and_size_mistakes_name_the_input() {
        let cases = [
            (
                r#"{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}"#,
                "shape [1, 4] does not match [-1, 3]",
            ),
            (
                r#"{"name":"x","shape":[1,3],"datatype":"BYTES","data":[1,2,3]}"#,
                "datatype `BYTES` is not accepted",
            ),
            (
                r#"{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3]}"#,
                "needs 6 values, `data` has 3",
            ),
            (
                r#"{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,"a",3]}"#,
                "holds a string",
            ),
            (
                r#"{"name":"x","shape":[1,3],"datatype":"INT32","data":[1,2.5,3]}"#,
                "2.5 is not an integer",
            ),
            (
                r#"{"name":"x","shape":[1,3],"datatype":"FP32"}"#,
                "no `data`",
            ),
        ];
        for (json, want) in cases {
            let e = rows_of(&tensor(json), 3, &[], &mut 0).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.message.contains(want), "{} / {want}", e.message);
            assert!(e.message.contains("input `x`"), "{}", e.message);
        }
    }

    #[test]
    fn binary_tensors_are_read_in_order_and_checked() {
        let mut bin = Vec::new();
        for v in [1.0f32, 2.0, 3.0] {
            bin.extend_from_slice(&v.to_le_bytes());
        }
        for v in [4i64, 5, 6] {
            bin.extend_from_slice(&v.to_le_bytes());
        }
        let a = tensor(
            r#"{"name":"a","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}"#,
        );
        let b = tensor(
            r#"{"name":"b","shape":[1,3],"datatype":"INT64","parameters":{"binary_data_size":24}}"#,
        );
        let mut off = 0;
        assert_eq!(rows_of(&a, 3, &bin, &mut off).unwrap().1, [1.0, 2.0, 3.0]);
        assert_eq!(rows_of(&b, 3, &bin, &mut off).unwrap().1, [4.0, 5.0, 6.0]);
        let short = rows_of(&b, 3, &bin, &mut off).unwrap_err();
        assert!(short.message.contains("ends before"), "{}", short.message);
        let wrong = tensor(
            r#"{"name":"a","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":8}}"#,
        );
        let e = rows_of(&wrong, 3, &bin, &mut 0).unwrap_err();
        assert!(e.message.contains("needs 12"), "{}", e.message);
    }

    #[test]
    fn malformed_json_and_lengths_are_bad_requests() {
        let e = parse(bytes::Bytes::from_static(b"{\"inputs\": ["), None)
            .err()
            .unwrap();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("line 1"), "{}", e.message);
        let e = parse(bytes::Bytes::from_static(b"{}"), Some("10"))
            .err()
            .unwrap();
        assert!(e.message.contains("body has 2 bytes"), "{}", e.message);
        let e = parse(bytes::Bytes::from_static(b"{\"inputs\":[],\"x\":1}"), None)
            .err()
            .unwrap();
        assert!(e.message.contains("unknown field `x`"), "{}", e.message);
    }

    #[test]
    fn answers_in_json_and_binary() {
        let probs = [0.25, 0.75];
        let outputs = [
            Output {
                name: "label",
                shape: vec![1],
                data: OutputData::Labels(vec!["b"]),
                binary: false,
            },
            Output {
                name: "probabilities",
                shape: vec![1, 2],
                data: OutputData::Values(&probs),
                binary: false,
            },
        ];
        let (body, split) = write_answer("m", "1", Some("r1"), None, &outputs);
        assert_eq!(split, None);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], "r1");
        assert_eq!(v["outputs"][0]["data"][0], "b");
        assert_eq!(v["outputs"][1]["data"][1], 0.75);
        let binary = [Output {
            name: "probabilities",
            shape: vec![1, 2],
            data: OutputData::Values(&probs),
            binary: true,
        }];
        let (body, split) = write_answer("m", "1", None, None, &binary);
        let n = split.unwrap();
        let v: Value = serde_json::from_slice(&body[..n]).unwrap();
        assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 16);
        assert_eq!(&body[n..n + 8], &0.25f64.to_le_bytes());
    }

    /// Mangled bodies (random bytes, truncations and byte flips of a
    /// valid request, lying binary sizes) give errors, never a panic.
    #[test]
    fn mangled_bodies_never_panic() {
        let valid = br#"{"id":"x","inputs":[{"name":"input","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,6]]}],"outputs":[{"name":"label"}]}"#;
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            let mut body = valid.to_vec();
            match round % 4 {
                0 => body.truncate((next() as usize) % valid.len()),
                1 => {
                    for _ in 0..1 + next() % 4 {
                        let i = (next() as usize) % body.len();
                        body[i] = next() as u8;
                    }
                }
                2 => body = (0..next() % 64).map(|_| next() as u8).collect(),
                _ => body.extend((0..next() % 32).map(|_| next() as u8)),
            }
            let header_len = (round % 5 == 0).then(|| (next() % 200).to_string());
            let Ok(p) = parse(bytes::Bytes::from(body), header_len.as_deref()) else {
                continue;
            };
            let mut offset = 0;
            for t in &p.request.inputs {
                let _ = rows_of(t, 3, &p.binary, &mut offset);
            }
        }
        // Sizes that would overflow or run past the body.
        for size in ["18446744073709551615", "12", "0", "-1", "1e3"] {
            let json = format!(
                r#"{{"inputs":[{{"name":"x","shape":[1,3],"datatype":"FP32","parameters":{{"binary_data_size":{size}}}}}]}}"#
            );
            let p = parse(bytes::Bytes::from(json), None).unwrap();
            assert!(rows_of(&p.request.inputs[0], 3, &[0; 4], &mut 0).is_err());
        }
        for huge in [
            r#"{"inputs":[{"name":"x","shape":[4611686018427387904,3],"datatype":"FP32","data":[1,2,3]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[4611686018427387904,3],"datatype":"FP64","parameters":{"binary_data_size":0}}]}"#,
            r#"{"inputs":[{"name":"x","shape":[9223372036854775807,3],"datatype":"FP32","data":[1,2,3]}]}"#,
        ] {
            let p = parse(bytes::Bytes::from_static(huge.as_bytes()), None).unwrap();
            let e = rows_of(&p.request.inputs[0], 3, &[], &mut 0).unwrap_err();
            assert!(
                e.message.contains("too large") || e.message.contains("needs"),
                "{e}"
            );
        }
    }
}
