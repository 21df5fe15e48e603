//! The peer-only Raft RPC service: decodes openraft messages, checks that the node the message
//! speaks for is the node whose certificate called, and hands them to the local Raft.
//!
//! The authorization layer has already admitted only certificates of nodes that are members of
//! this node's cluster, voters or learners (or any node while this one has no membership yet;
//! or anyone, with `--insecure`). Here the message's claimed sender must be the certificate's
//! node id: a member cannot vote or append in another node's name. A vote must also come from a
//! voter (refusing a vote is always safe; the check also holds with `--insecure`).
//!
//! The price of the membership check on appends: a member that was down while a new node was
//! added and then elected leader does not know that node yet and refuses it, so it cannot catch
//! up from it (it says so in its log, and `cluster status` shows its lag). Remove and re-add
//! it (docs/operations.md). Accepting appends from any node of the CA instead would let any
//! certificate ever issued — a removed manager's — depose the leader and write the log.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use crate::proto::raft::raft_service_server::RaftService;
use crate::proto::raft::{RaftReply, RaftRequest};
use crate::raft::fresh_gate::{self, FreshGate};
use crate::raft::{NodeId, Raft};
use crate::security::{Caller, Principal};

pub struct RaftSvc {
    raft: Raft,
    /// Refuses calls to a voter that ran while this node's store promised nothing.
    gate: Arc<FreshGate>,
}

impl RaftSvc {
    pub fn new(raft: Raft, gate: Arc<FreshGate>) -> Self {
        RaftSvc { raft, gate }
    }

    /// Whether `candidate` is a voter of this node's membership, or this node has none yet.
    fn knows_voter(&self, candidate: NodeId) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        let mut voters = membership.voter_ids().peekable();
        voters.peek().is_none() || membership.voter_ids().any(|v| v == candidate)
    }
}

/// Decodes a payload; garbage is a clean INVALID_ARGUMENT, never a panic.
pub(crate) fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(payload)
        .map_err(|e| Status::invalid_argument(format!("bad raft payload: {e}")))
}

fn encode<T: Serialize>(res: &T) -> Result<Response<RaftReply>, Status> {
    let payload =
        serde_json::to_vec(res).map_err(|e| Status::internal(format!("encode raft reply: {e}")))?;
    Ok(Response::new(RaftReply { payload }))
}

/// The request's caller and its decoded message, refused when the message claims to come from
/// a node other than the certificate's.
fn admit<T: DeserializeOwned>(
    req: Request<RaftRequest>,
    claimed: impl Fn(&T) -> Option<NodeId>,
) -> Result<T, Status> {
    let caller = Caller::of(&req);
    let msg: T = decode_payload(&req.into_inner().payload)?;
    match caller.principal {
        Principal::Anonymous => Ok(msg),
        Principal::Node(id) if claimed(&msg) == Some(id) => Ok(msg),
        other => Err(Status::permission_denied(format!(
            "{other} sent a Raft message in the name of node {}",
            claimed(&msg).map_or("(none)".to_string(), |n| n.to_string())
        ))),
    }
}

#[tonic::async_trait]
impl RaftService for RaftSvc {
    #[tracing::instrument(level = "trace", skip_all, fields(rpc = "append_entries"))]
    async fn append_entries(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let marked = fresh_gate::marked(req.metadata());
        let msg = admit(req, |m: &openraft::raft::AppendEntriesRequest<_>| {
            m.vote.leader_id().voted_for()
        })?;
        let from = msg.vote.leader_id().voted_for().unwrap_or_default();
        self.gate.admit("append_entries", from, marked)?;
        encode(&self.raft.append_entries(msg).await)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc = "vote"))]
    async fn vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let marked = fresh_gate::marked(req.metadata());
        let msg = admit(req, |m: &openraft::raft::VoteRequest<NodeId>| {
            m.vote.leader_id().voted_for()
        })?;
        let candidate = msg.vote.leader_id().voted_for().unwrap_or_default();
        self.gate.admit("vote", candidate, marked)?;
        if !self.knows_voter(candidate) {
            tracing::warn!(
                candidate,
                "vote request from a node that is not a voter refused"
            );
            return Err(Status::permission_denied(format!(
                "node {candidate} is not a voter of this cluster"
            )));
        }
        encode(&self.raft.vote(msg).await)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc = "install_snapshot"))]
    async fn install_snapshot(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let marked = fresh_gate::marked(req.metadata());
        let msg = admit(req, |m: &openraft::raft::InstallSnapshotRequest<_>| {
            m.vote.leader_id().voted_for()
        })?;
        let from = msg.vote.leader_id().voted_for().unwrap_or_default();
        self.gate.admit("install_snapshot", from, marked)?;
        encode(&self.raft.install_snapshot(msg).await)
    }
}

#[cfg(test)]
mod tests {
    //! Hostile input (issue #13): whatever reaches the Raft port, the request payloads decode
    //! to openraft's messages or are refused as INVALID_ARGUMENT, and whatever a peer answers
    //! decodes to its reply or is a network error; nothing panics. Property tests over any
    //! bytes and over real messages' JSON with bytes and numbers mutated.

    use std::collections::{BTreeMap, BTreeSet};

    use openraft::error::{Fatal, InstallSnapshotError, RPCError, RaftError};
    use openraft::raft::{
        AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest,
        InstallSnapshotResponse, VoteRequest, VoteResponse,
    };
    use openraft::{
        BasicNode, CommittedLeaderId, EntryPayload, LogId, Membership, SnapshotMeta,
        StoredMembership, Vote,
    };
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;
    use crate::raft::{decode_reply, Entry, NodeId, TypeConfig};
    use crate::state::{Cmd, Proposal};

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn membership() -> Membership<NodeId, BasicNode> {
        Membership::new(
            vec![BTreeSet::from([1, 2, 3])],
            BTreeMap::from([
                (1, BasicNode::new("10.0.0.1:7101")),
                (2, BasicNode::new("10.0.0.2:7101")),
                (3, BasicNode::new("10.0.0.3:7101")),
            ]),
        )
    }

    /// The JSON of one real message of each kind the service reads, and of each reply.
    fn seeds() -> Vec<Vec<u8>> {
        let vote = Vote::new_committed(3, 1);
        let append = AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: Some(log_id(3, 7)),
            entries: vec![
                Entry {
                    log_id: log_id(3, 8),
                    payload: EntryPayload::Normal(Proposal {
                        at_ms: 1_700_000_000_000,
                        cmd: Cmd::AckFailover { group: "g".into() },
                    }),
                },
                Entry {
                    log_id: log_id(3, 9),
                    payload: EntryPayload::Membership(membership()),
                },
                Entry {
                    log_id: log_id(3, 10),
                    payload: EntryPayload::Blank,
                },
            ],
            leader_commit: Some(log_id(3, 7)),
        };
        let snapshot = InstallSnapshotRequest::<TypeConfig> {
            vote,
            meta: SnapshotMeta {
                last_log_id: Some(log_id(3, 7)),
                last_membership: StoredMembership::new(Some(log_id(2, 1)), membership()),
                snapshot_id: "3-1-7-1".into(),
            },
            offset: 0,
            data: br#"{"name":"prod"}"#.to_vec(),
            done: true,
        };
        let fatal = RaftError::<NodeId>::Fatal(Fatal::Stopped);
        let json = |v: serde_json::Result<Vec<u8>>| v.expect("serializes");
        vec![
            json(serde_json::to_vec(&append)),
            json(serde_json::to_vec(&VoteRequest::new(
                vote,
                Some(log_id(3, 7)),
            ))),
            json(serde_json::to_vec(&snapshot)),
            json(serde_json::to_vec(&Ok::<_, RaftError<NodeId>>(
                AppendEntriesResponse::<NodeId>::HigherVote(vote),
            ))),
            json(serde_json::to_vec(&Ok::<_, RaftError<NodeId>>(
                VoteResponse::new(vote, Some(log_id(3, 7)), true),
            ))),
            json(serde_json::to_vec(&Ok::<
                _,
                RaftError<NodeId, InstallSnapshotError>,
            >(
                InstallSnapshotResponse { vote }
            ))),
            json(serde_json::to_vec(
                &Err::<AppendEntriesResponse<NodeId>, _>(fatal),
            )),
        ]
    }

    /// Reads `bytes` as every request the service decodes and every reply a peer sends.
    fn read_everything(bytes: &[u8]) -> Result<(), TestCaseError> {
        fn request<T: DeserializeOwned>(bytes: &[u8]) -> Result<(), TestCaseError> {
            let req = Request::new(RaftRequest {
                payload: bytes.to_vec(),
            });
            if let Err(status) = admit::<T>(req, |_| None) {
                prop_assert_eq!(status.code(), tonic::Code::InvalidArgument);
            }
            Ok(())
        }
        fn reply<Resp: DeserializeOwned, E: std::error::Error + DeserializeOwned>(
            bytes: &[u8],
        ) -> Result<(), TestCaseError> {
            match decode_reply::<Resp, E>(2, bytes) {
                Ok(_) | Err(RPCError::Network(_)) | Err(RPCError::RemoteError(_)) => Ok(()),
                Err(e) => Err(TestCaseError::fail(format!("unexpected error kind: {e}"))),
            }
        }
        request::<AppendEntriesRequest<TypeConfig>>(bytes)?;
        request::<VoteRequest<NodeId>>(bytes)?;
        request::<InstallSnapshotRequest<TypeConfig>>(bytes)?;
        reply::<AppendEntriesResponse<NodeId>, RaftError<NodeId>>(bytes)?;
        reply::<VoteResponse<NodeId>, RaftError<NodeId>>(bytes)?;
        reply::<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>(bytes)?;
        Ok(())
    }

    /// One edit of a JSON text: bytes flipped, cut or inserted, a number replaced with an edge
    /// value, JSON punctuation inserted.
    #[derive(Clone, Debug)]
    enum Edit {
        Flip(Index, u8),
        Truncate(Index),
        Number(Index, &'static str),
        Insert(Index, &'static str),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let numbers = prop::sample::select(vec![
            "0",
            "-1",
            "18446744073709551615",
            "18446744073709551616",
            "1e999",
            "0.5",
            "null",
            "\"7\"",
            "[]",
            "{}",
        ]);
        let tokens = prop::sample::select(vec![
            "{", "}", "[", "]", ",", ":", "\"", "\\", "null", "\"x\":1,", "[[[[[[[[",
        ]);
        prop_oneof![
            (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
            any::<Index>().prop_map(Edit::Truncate),
            (any::<Index>(), numbers).prop_map(|(i, n)| Edit::Number(i, n)),
            (any::<Index>(), tokens).prop_map(|(i, t)| Edit::Insert(i, t)),
        ]
    }

    fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
        let mut b = seed.to_vec();
        for e in edits {
            let len = b.len();
            match e {
                Edit::Flip(i, bit) if len > 0 => b[i.index(len)] ^= 1 << bit,
                Edit::Truncate(i) => b.truncate(i.index(len + 1)),
                Edit::Number(i, n) => {
                    // The number (run of digits) at or after the position, replaced.
                    let from = i.index(len + 1);
                    if let Some(start) = b[from..].iter().position(u8::is_ascii_digit) {
                        let start = from + start;
                        let end = b[start..]
                            .iter()
                            .position(|c| !c.is_ascii_digit())
                            .map_or(len, |k| start + k);
                        b.splice(start..end, n.bytes());
                    }
                }
                Edit::Insert(i, t) => {
                    let at = i.index(len + 1);
                    b.splice(at..at, t.bytes());
                }
                _ => {}
            }
        }
        b
    }

    #[test]
    fn seeds_decode() {
        for s in seeds() {
            read_everything(&s).unwrap();
        }
        let req = Request::new(RaftRequest {
            payload: seeds()[1].clone(),
        });
        assert!(admit::<VoteRequest<NodeId>>(req, |_| None).is_ok());
        let req = Request::new(RaftRequest {
            payload: b"{\"vote\":".to_vec(),
        });
        let err = admit::<VoteRequest<NodeId>>(req, |_| None).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().starts_with("bad raft payload"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Any bytes.
        #[test]
        fn arbitrary_bytes(bytes in vec(any::<u8>(), 0..256)) {
            read_everything(&bytes)?;
        }

        /// Any text that is JSON-ish (printable, with JSON's punctuation).
        #[test]
        fn arbitrary_json_text(text in r#"[\[\]{}:,"0-9a-z_ .-]{0,200}"#) {
            read_everything(text.as_bytes())?;
        }

        /// The real messages and replies, mutated.
        #[test]
        fn mutated_messages(seed in any::<Index>(), edits in vec(edit(), 1..6)) {
            let seeds = seeds();
            read_everything(&apply(&seeds[seed.index(seeds.len())], &edits))?;
        }
    }
}
