//! Bodies the gateway watches without decoding them: the request side
//! enforces the message size limit from the gRPC frame headers as they pass;
//! the response side notes the final status for the access log.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

/// Follows the gRPC framing (1 flag byte, 4 length bytes, the message) across
/// chunks, refusing a frame that declares more than the limit.
#[derive(Debug, Clone, Default)]
struct Frames {
    header: [u8; 5],
    have: usize,
    remaining: u64,
}

impl Frames {
    /// Takes in one chunk; the declared length of a frame over `limit`, if any.
    fn feed(&mut self, mut data: &[u8], limit: usize) -> Result<(), u64> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.remaining -= n as u64;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 5 {
                self.have = 0;
                let len = u64::from(u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]));
                if len > limit as u64 {
                    return Err(len);
                }
                self.remaining = len;
            }
        }
        Ok(())
    }
}

fn too_large(len: u64, limit: usize) -> tonic::Status {
    tonic::Status::resource_exhausted(format!(
        "request message of {len} bytes exceeds the gateway's limit of {limit} bytes (ITSM_GATEWAY_MAX_BODY)"
    ))
}

/// A gRPC request body whose every message is checked against the limit.
#[derive(Debug)]
pub struct Limited {
    read: VecDeque<Frame<Bytes>>,
    inner: axum::body::Body,
    frames: Frames,
    limit: usize,
}

impl Limited {
    /// Checks each message as it passes; one over the limit ends the stream
    /// with RESOURCE_EXHAUSTED. For client-streaming calls, whose caller may
    /// wait for the reply before sending anything.
    pub fn streaming(inner: axum::body::Body, limit: usize) -> Self {
        Self {
            read: VecDeque::new(),
            inner,
            frames: Frames::default(),
            limit,
        }
    }

    /// Reads ahead to the first message's header, so a first (for unary
    /// calls: the only) message over the limit is refused before anything
    /// reaches a backend. Later messages over the limit end the stream with
    /// the same status.
    pub async fn new(mut inner: axum::body::Body, limit: usize) -> Result<Self, tonic::Status> {
        let mut frames = Frames::default();
        let mut read = VecDeque::new();
        let mut seen = 0;
        while seen < 5 {
            let Some(frame) = inner.frame().await else {
                break;
            };
            let frame = frame.map_err(|e| {
                tonic::Status::cancelled(format!("the request body could not be read: {e}"))
            })?;
            if let Some(data) = frame.data_ref() {
                seen += data.len();
                frames
                    .feed(data, limit)
                    .map_err(|len| too_large(len, limit))?;
            }
            let trailers = frame.is_trailers();
            read.push_back(frame);
            if trailers {
                break;
            }
        }
        Ok(Self {
            read,
            inner,
            frames,
            limit,
        })
    }
}

impl Body for Limited {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if let Some(frame) = self.read.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let limit = self.limit;
                    if let Err(len) = self.frames.feed(data, limit) {
                        return Poll::Ready(Some(Err(too_large(len, limit))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(tonic::Status::cancelled(
                format!("the request body could not be read: {error}"),
            )))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self
            .read
            .iter()
            .filter_map(|f| f.data_ref())
            .map(|d| d.len() as u64)
            .sum();
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + buffered);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + buffered);
        }
        hint
    }
}

/// What is told about one gRPC call once it ends: the access log line, the
/// outcome on its spans, its duration in the metrics.
#[derive(Debug)]
pub struct AccessLog {
    pub method: String,
    pub principal: String,
    pub backend: String,
    pub request_id: String,
    pub started: Instant,
    /// The gRPC status code, once known.
    pub status: Option<tonic::Code>,
    /// The call's server span.
    pub span: tracing::Span,
    /// The client span of the hop to the backend (none when refused before).
    pub hop: tracing::Span,
    /// The `service` metric label.
    pub service: metrics::SharedString,
}

impl AccessLog {
    /// Writes the line (one per call), ends the spans and records the
    /// duration; `ended` says how when no status was seen, `fallback` is the
    /// code counted then.
    pub fn emit(self, ended: &str, fallback: tonic::Code) {
        let code = self.status.unwrap_or(fallback);
        let status = self
            .status
            .map_or_else(|| ended.to_owned(), |code| format!("{code:?}"));
        let took = self.started.elapsed();
        crate::telemetry::record_code(&self.hop, code);
        crate::telemetry::record_code(&self.span, code);
        crate::telemetry::record_duration(
            crate::telemetry::Protocol::Grpc,
            self.service,
            code,
            took,
        );
        let _in_call = self.span.enter();
        tracing::info!(
            target: "itsm_gateway::access",
            method = %self.method,
            principal = %self.principal,
            status = %status,
            duration_ms = took.as_secs_f64() * 1000.0,
            backend = %self.backend,
            request_id = %self.request_id,
            "grpc call"
        );
    }
}

/// A response body from a backend, streamed on as it is; the status in its
/// trailers goes into the access log line, written when the body ends (or
/// the caller goes away).
#[derive(Debug)]
pub struct Observed {
    inner: tonic::body::Body,
    log: Option<AccessLog>,
}

impl Observed {
    pub fn new(inner: tonic::body::Body, log: AccessLog) -> Self {
        Self {
            inner,
            log: Some(log),
        }
    }
}

impl Body for Observed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(log)) = (frame.trailers_ref(), self.log.as_mut()) {
                    log.status = trailers
                        .get("grpc-status")
                        .map(|code| tonic::Code::from_bytes(code.as_bytes()));
                }
            }
            Poll::Ready(None) => {
                if let Some(log) = self.log.take() {
                    log.emit("no status", tonic::Code::Unknown);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut log) = self.log.take() {
                    log.status.get_or_insert(tonic::Code::Unavailable);
                    log.emit("broken", tonic::Code::Unavailable);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        if let Some(log) = self.log.take() {
            log.emit("cancelled by the caller", tonic::Code::Cancelled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, len as usize));
        out
    }

    #[test]
    fn frame_headers_are_followed_across_chunks() {
        let mut stream = frame(3);
        stream.extend(frame(10));
        stream.extend(frame(4));
        for split in 1..stream.len() {
            let mut frames = Frames::default();
            let (a, b) = stream.split_at(split);
            assert_eq!(frames.feed(a, 10).and(frames.feed(b, 10)), Ok(()));
            let mut strict = Frames::default();
            assert_eq!(strict.feed(a, 9).and_then(|()| strict.feed(b, 9)), Err(10));
        }
    }
}
