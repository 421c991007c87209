//! One gRPC call on a unix socket: how containerd (its CRI plugin, its task service) is asked.
//! The message goes as bytes already encoded (the caller owns the protobuf types), so the
//! guest's agent can make the call for the harness without knowing what it carries: a `Call`
//! crosses the virtio-serial port as JSON, like `unix_http::Request`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::{Buf, BufMut};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Endpoint;

use crate::cancel::Cancel;

/// A unary call: `method` is the full path, `/runtime.v1.RuntimeService/Version`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Call {
    pub socket: PathBuf,
    pub method: String,
    pub message: Vec<u8>,
}

impl Call {
    /// For messages: `/runtime.v1.RuntimeService/Version (on /run/containerd.sock)`.
    pub fn describe(&self) -> String {
        format!("{} (on {})", self.method, self.socket.display())
    }
}

/// What the server said: the response's bytes, or a gRPC status that is not OK.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Reply {
    Message(Vec<u8>),
    /// The status code (5 is NotFound) and message.
    Refused {
        code: i32,
        message: String,
    },
}

/// gRPC status code 5: what containerd answers for an id it does not know.
pub const NOT_FOUND: i32 = 5;

/// Makes `call` on this machine. A connection is made per call (a few milliseconds on a unix
/// socket); unless `cancel` is `Cancel::NEVER`, the call ends within 0.1 s of Ctrl-C.
pub fn send(call: &Call, timeout: Duration, cancel: Cancel) -> Result<Reply> {
    cancel.check()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start tokio for a gRPC call")?;
    runtime
        .block_on(async {
            let watched = async {
                tokio::select! {
                    reply = tokio::time::timeout(timeout, exchange(call)) => reply
                        .map_err(|_| anyhow!("no answer within {} s", timeout.as_secs_f64()))?,
                    () = stop_asked(cancel) => Err(anyhow!("interrupted (Ctrl-C, SIGTERM or SIGHUP): cleaning up")),
                }
            };
            watched.await
        })
        .with_context(|| format!("gRPC call {}", call.describe()))
}

/// Never resolves for a call that Ctrl-C may not stop; else once the run was asked to stop.
async fn stop_asked(cancel: Cancel) {
    if !cancel.may_cut_short() {
        return std::future::pending().await;
    }
    while !cancel.stop_asked() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn exchange(call: &Call) -> Result<Reply> {
    let socket = call.socket.clone();
    // The URI is never dialled: the connector below opens the unix socket instead.
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move { tokio::net::UnixStream::connect(socket).await.map(TokioIo::new) }
        }))
        .await
        .with_context(|| format!("cannot connect to {}", call.socket.display()))?;
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.context("the connection is not ready")?;
    let path = call.method.parse().with_context(|| format!("not a gRPC method path: {}", call.method))?;
    match client.unary(tonic::Request::new(call.message.clone()), path, RawBytes).await {
        Ok(response) => Ok(Reply::Message(response.into_inner())),
        // The socket is gone (the daemon died): the call failed, the server said nothing.
        Err(status) if status.code() == tonic::Code::Unavailable && status.message().contains("connect") => {
            bail!("{}", status.message())
        }
        Err(status) => Ok(Reply::Refused { code: status.code() as i32, message: status.message().to_string() }),
    }
}

/// A codec that passes messages through as the bytes the caller encoded.
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, destination: &mut EncodeBuf<'_>) -> Result<(), Status> {
        destination.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, source: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(source.copy_to_bytes(source.remaining()).to_vec()))
    }
}
