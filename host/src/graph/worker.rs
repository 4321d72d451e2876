//! Nodes in their own process (`process = true`): the host starts
//! `tessera worker --model M`, hands it rows over a pipe and reads the
//! answer back. A crash in the plugin ends the worker, not the host: the
//! request it was serving fails, and the next request starts a new worker.
//!
//! Frames (little-endian): the worker first sends a hello, `0` and the
//! answer width (`u64`), or `1` and an error; then for every request of
//! `rows`, `cols` (`u64` each) and `rows * cols` `f32` values it answers
//! `0`, a count (`u64`) and that many `f64` values, or `1` and an error
//! (`u32` length, UTF-8).

use std::{
    ffi::OsString,
    io::{BufReader, BufWriter, Read, Write},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

use anyhow::Context;

use crate::{RunContext, decompose::whole_answer, model::LoadedModel, plugin::Registry};

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_error(r: &mut impl Read) -> std::io::Result<String> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    let mut msg = vec![0u8; u32::from_le_bytes(b).min(1 << 20) as usize];
    r.read_exact(&mut msg)?;
    Ok(String::from_utf8_lossy(&msg).into_owned())
}

fn write_error(w: &mut impl Write, msg: &str) -> std::io::Result<()> {
    w.write_all(&[1])?;
    w.write_all(&(msg.len() as u32).to_le_bytes())?;
    w.write_all(msg.as_bytes())?;
    w.flush()
}

/// The worker's side: answers requests for `model` from `input` on
/// `output` until `input` ends.
///
/// # Errors
/// A broken pipe.
pub fn serve(
    registry: &Registry,
    model: anyhow::Result<LoadedModel>,
    input: impl Read,
    output: impl Write,
) -> anyhow::Result<()> {
    let (mut input, mut output) = (BufReader::new(input), BufWriter::new(output));
    let model = match model {
        Ok(m) => m,
        Err(e) => {
            write_error(&mut output, &format!("{e:#}"))?;
            return Ok(());
        }
    };
    let width = model.header.answer_width();
    output.write_all(&[0])?;
    output.write_all(&(width as u64).to_le_bytes())?;
    output.flush()?;
    let ctx = RunContext::new(registry, 1);
    loop {
        let rows = match read_u64(&mut input) {
            Ok(r) => r as usize,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let cols = read_u64(&mut input)? as usize;
        let mut raw = vec![
            0u8;
            rows.checked_mul(cols)
                .and_then(|n| n.checked_mul(4))
                .context("request too large")?
        ];
        input.read_exact(&mut raw)?;
        let x: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        match whole_answer(&model, ctx.as_abi(), &x) {
            Ok(v) => {
                output.write_all(&[0])?;
                output.write_all(&(v.len() as u64).to_le_bytes())?;
                for f in v {
                    output.write_all(&f.to_le_bytes())?;
                }
                output.flush()?;
            }
            Err(e) => write_error(&mut output, &e.to_string())?,
        }
    }
}

struct Proc {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// The host's side: one worker process, started when first needed and
/// again after it dies.
pub struct Worker {
    /// The program to start (the `tessera` binary).
    pub program: PathBuf,
    args: Vec<OsString>,
    label: String,
    proc: Option<Proc>,
    /// Workers started so far.
    pub starts: u64,
}

impl Worker {
    /// A worker for `model`, loading the plugins `plugins`; `label`
    /// names it in errors.
    pub fn new(
        program: PathBuf,
        plugins: &[PathBuf],
        model: &std::path::Path,
        label: String,
    ) -> Self {
        let mut args: Vec<OsString> = Vec::new();
        for p in plugins {
            args.push("--plugins".into());
            args.push(p.into());
        }
        args.extend(["worker".into(), "--model".into(), model.into()]);
        Self {
            program,
            args,
            label,
            proc: None,
            starts: 0,
        }
    }

    /// The default program: `$TESSERA_WORKER`, else this executable.
    pub fn default_program() -> PathBuf {
        std::env::var_os("TESSERA_WORKER")
            .map(PathBuf::from)
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("tessera"))
    }

    fn start(&mut self) -> anyhow::Result<&mut Proc> {
        if self.proc.is_none() {
            let mut child = Command::new(&self.program)
                .args(&self.args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .with_context(|| {
                    format!(
                        "{}: cannot start the worker {}",
                        self.label,
                        self.program.display()
                    )
                })?;
            self.starts += 1;
            let stdin = BufWriter::new(child.stdin.take().context("worker stdin")?);
            let mut stdout = BufReader::new(child.stdout.take().context("worker stdout")?);
            let mut status = [0u8; 1];
            let hello = stdout.read_exact(&mut status).and_then(|()| {
                if status[0] == 0 {
                    read_u64(&mut stdout).map(|_| None)
                } else {
                    read_error(&mut stdout).map(Some)
                }
            });
            match hello {
                Ok(None) => {}
                Ok(Some(msg)) => {
                    let _ = child.wait();
                    anyhow::bail!("{}: the worker cannot load its model: {msg}", self.label);
                }
                Err(_) => {
                    let status = child.wait().map(|s| describe(&s)).unwrap_or_default();
                    anyhow::bail!("{}: the worker ended while starting ({status})", self.label);
                }
            }
            self.proc = Some(Proc {
                child,
                stdin,
                stdout,
            });
        }
        Ok(self.proc.as_mut().expect("started"))
    }

    /// The answer for `rows` rows of `cols` values: what
    /// [`whole_answer`] gives in the worker.
    ///
    /// # Errors
    /// A worker that cannot start, the model's error, or a worker that
    /// died during the request (the next call starts a new one).
    pub fn call(&mut self, x: &[f32], rows: usize, cols: usize) -> anyhow::Result<Vec<f64>> {
        let p = self.start()?;
        let exchange = (|| -> std::io::Result<Result<Vec<f64>, String>> {
            p.stdin.write_all(&(rows as u64).to_le_bytes())?;
            p.stdin.write_all(&(cols as u64).to_le_bytes())?;
            for v in x {
                p.stdin.write_all(&v.to_le_bytes())?;
            }
            p.stdin.flush()?;
            let mut status = [0u8; 1];
            p.stdout.read_exact(&mut status)?;
            if status[0] != 0 {
                return Ok(Err(read_error(&mut p.stdout)?));
            }
            let n = read_u64(&mut p.stdout)? as usize;
            let mut raw = vec![0u8; n * 8];
            p.stdout.read_exact(&mut raw)?;
            Ok(Ok(raw
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect()))
        })();
        match exchange {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(msg)) => anyhow::bail!("{}: {msg}", self.label),
            Err(_) => {
                let mut p = self.proc.take().expect("started");
                let _ = p.child.kill();
                let status = p.child.wait().map(|s| describe(&s)).unwrap_or_default();
                anyhow::bail!(
                    "{}: the worker process ended during the request ({status}); a new one \
                     starts with the next request",
                    self.label
                )
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            // Closing its input ends the worker's loop; kill it if it
            // lingers.
            drop(p.stdin);
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

fn describe(s: &std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            return format!("killed by signal {sig}");
        }
    }
    match s.code() {
        Some(c) => format!("exit code {c}"),
        None => "ended".into(),
    }
}
