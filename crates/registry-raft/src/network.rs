use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use registry_http::{ErrorKind, HttpInvoker, HttpRequest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::types::{Node, NodeId, Raft, TypeConfig};

/// The node-to-node RPCs, as paths under `/raft/`.
pub const APPEND: &str = "append";
/// See [`APPEND`].
pub const VOTE: &str = "vote";
/// See [`APPEND`].
pub const SNAPSHOT: &str = "snapshot";

/// openraft's RPCs over our HTTP stack: one POST per call to `<url>/raft/<name>`, the
/// request and the answer (`Result<response, RaftError>`) in JSON. A snapshot chunk
/// travels as raw bytes after a JSON line of the rest of the request, not as a JSON
/// number array (3–4 times the size).
#[derive(Clone)]
pub struct Network {
    invoker: Arc<dyn HttpInvoker>,
}

impl Network {
    /// A network that sends through `invoker` (tests wrap it to cut chosen links). The
    /// invoker's own read timeout must allow a whole snapshot to be installed; each call
    /// is cut off at the deadline openraft gives it.
    pub fn new(invoker: Arc<dyn HttpInvoker>) -> Network {
        Network { invoker }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Peer {
        Peer {
            target,
            url: node.addr.clone(),
            invoker: self.invoker.clone(),
        }
    }
}

/// The connection to one peer (nothing is opened until a call).
pub struct Peer {
    target: NodeId,
    url: String,
    invoker: Arc<dyn HttpInvoker>,
}

type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, Node, E>>;

impl Peer {
    async fn call<T, E>(&self, name: &str, body: Bytes, deadline: Duration) -> Rpc<T, E>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let request = HttpRequest {
            method: http::Method::POST,
            url: format!("{}/raft/{name}", self.url),
            headers: vec![("content-type", "application/octet-stream".to_owned())],
            body,
            timeout: None,
        };
        let answer = match tokio::time::timeout(deadline, self.invoker.send(request)).await {
            Err(_) => {
                let e = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{name} to {} timed out", self.url),
                );
                return Err(RPCError::Network(NetworkError::new(&e)));
            }
            Ok(Err(e)) if e.kind == ErrorKind::Connect => return Err(RPCError::Unreachable(Unreachable::new(&e))),
            Ok(Err(e)) => return Err(RPCError::Network(NetworkError::new(&e))),
            Ok(Ok(answer)) => answer,
        };
        if !answer.is_success() {
            let e = std::io::Error::other(format!(
                "{name} to {} answered {}: {}",
                self.url,
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        let result: Result<T, E> =
            serde_json::from_slice(&answer.body).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn encode<T: Serialize>(value: &T) -> Rpc<Bytes, RaftError<NodeId, InstallSnapshotError>> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| RPCError::Network(NetworkError::new(&e)))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        let body = serde_json::to_vec(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.call(APPEND, body.into(), option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let head = SnapshotHead {
            vote: rpc.vote,
            meta: rpc.meta,
            offset: rpc.offset,
            done: rpc.done,
        };
        let mut body = encode(&head)?.to_vec();
        body.push(b'\n');
        body.extend_from_slice(&rpc.data);
        self.call(SNAPSHOT, body.into(), option.hard_ttl()).await
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Rpc<VoteResponse<NodeId>> {
        let body = serde_json::to_vec(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.call(VOTE, body.into(), option.hard_ttl()).await
    }
}

/// An install-snapshot request without its data.
#[derive(Serialize, Deserialize)]
struct SnapshotHead {
    vote: openraft::Vote<NodeId>,
    meta: openraft::SnapshotMeta<NodeId, Node>,
    offset: u64,
    done: bool,
}

/// What serving one RPC answered.
pub struct Served {
    /// The JSON of `Result<response, RaftError>`.
    pub answer: Bytes,
    /// The request came from a leader this node now follows (entries or a snapshot it
    /// accepted), or this node granted a vote: its election timer starts over.
    pub heard_leader: bool,
}

/// Answers one RPC that a peer sent to `/raft/<name>`, or an error message for a request
/// that is not one.
pub async fn serve_rpc(raft: &Raft, name: &str, body: Bytes) -> Result<Served, String> {
    fn answer<T: Serialize>(result: &T, heard_leader: bool) -> Result<Served, String> {
        serde_json::to_vec(result)
            .map(|answer| Served {
                answer: Bytes::from(answer),
                heard_leader,
            })
            .map_err(|e| e.to_string())
    }
    fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
        serde_json::from_slice(body).map_err(|e| format!("not a raft request: {e}"))
    }
    match name {
        APPEND => {
            let result = raft.append_entries(parse(&body)?).await;
            let heard = matches!(&result, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_)));
            answer(&result, heard)
        }
        VOTE => {
            let result = raft.vote(parse(&body)?).await;
            let granted = matches!(&result, Ok(r) if r.vote_granted);
            answer(&result, granted)
        }
        SNAPSHOT => {
            let newline = body
                .iter()
                .position(|b| *b == b'\n')
                .ok_or("not a raft snapshot: no head line")?;
            let head: SnapshotHead = parse(&body[..newline])?;
            let request = InstallSnapshotRequest {
                vote: head.vote,
                meta: head.meta,
                offset: head.offset,
                data: body[newline + 1..].to_vec(),
                done: head.done,
            };
            let result = raft.install_snapshot(request).await;
            let heard = result.is_ok();
            answer(&result, heard)
        }
        other => Err(format!("no raft RPC named {other:?}")),
    }
}
