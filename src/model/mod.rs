//! The bottom floor: fact and value types that every layer shares. Adapters produce them, the
//! engine decides on them, the replicated state records them. This module imports nothing of ours.

pub mod failover;
pub mod health;
pub mod reach;
pub mod server;

pub use failover::{
    DiffPlan, DiffRange, FencePlan, HookCommand, HostFence, MasterProbe, OldMysqld, ReplicaAction,
    ReplicaStart, ReplicasOutcome, ReplicasPlan, RunOutcome, SalvagePlan, SurvivorRelay, Target,
    TargetKind,
};
pub use health::{
    Health, ManagerVote, ReplicaIo, ReplicaPolicy, ReplicaPulse, Verdict, VerdictKind,
};
pub use reach::ReachView;
pub use server::{
    BinlogCoord, BinlogEvent, BinlogFilters, Dialect, Flavor, GtidState, IoThread, Observations,
    ReplFilters, ReplicaStatus, SemiSync, ServerInfo, Thread, Version,
};
