//! The names of a run's steps (MHA's phases) and the kinds of run: the journal's vocabulary,
//! shared by the journal and its rules.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    /// Phase 1: configuration check (master still dead, replicas, anti-flap).
    ConfigCheck,
    /// Phase 2: dead-master shutdown / fencing (IO threads stopped, VIP fenced, read_only / hook).
    Fence,
    /// Phase 3.1: latest replicas.
    LatestReplicas,
    /// Phase 3.2: save the dead master's binlog over SSH (what no replica received).
    SaveMasterBinlog,
    /// Phase 3.3: choose the new master (decided once, journaled).
    ChooseNewMaster,
    /// Phase 3.4: diff files from the latest replica's relay logs (file/position groups).
    GenerateDiffs,
    /// Phase 3.5: bring the new master level and promote it.
    PromoteNewMaster,
    /// Phase 4: repoint the other replicas (in parallel).
    ReplicasRecovery,
    /// Phase 5: new-master cleanup (RESET SLAVE ALL, VIP up), report.
    NewMasterCleanup,
}

impl StepName {
    /// The steps of a run, in order.
    pub const ALL: [StepName; 9] = [
        StepName::ConfigCheck,
        StepName::Fence,
        StepName::LatestReplicas,
        StepName::SaveMasterBinlog,
        StepName::ChooseNewMaster,
        StepName::GenerateDiffs,
        StepName::PromoteNewMaster,
        StepName::ReplicasRecovery,
        StepName::NewMasterCleanup,
    ];

    /// The banner MHA users know.
    pub fn phase(&self) -> &'static str {
        match self {
            StepName::ConfigCheck => "Phase 1: Configuration Check Phase",
            StepName::Fence => "Phase 2: Dead Master Shutdown Phase",
            StepName::LatestReplicas => "Phase 3.1: Getting Latest Slaves Phase",
            StepName::SaveMasterBinlog => "Phase 3.2: Saving Dead Master's Binlog Phase",
            StepName::ChooseNewMaster => "Phase 3.3: Determining New Master Phase",
            StepName::GenerateDiffs => "Phase 3.4: New Master Diff Log Generation Phase",
            StepName::PromoteNewMaster => "Phase 3.5: Master Log Apply Phase",
            StepName::ReplicasRecovery => "Phase 4: Slaves Recovery Phase",
            StepName::NewMasterCleanup => "Phase 5: New master cleanup phase",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Auto,
    Manual,
    Switchover,
}
