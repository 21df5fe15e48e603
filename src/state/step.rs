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
    /// Online switchover, phase 1: MHA's gates (every server alive, replicas running and
    /// within the lag limit, no long update on the master) and the new master.
    SwitchCheck,
    /// Online switchover, phase 2: writes blocked on the old master, its final position
    /// journaled.
    RejectUpdates,
    /// Online switchover, phase 3: the new master reaches that position and becomes the
    /// writable master (the point of no return).
    SwitchMaster,
    /// Online switchover, phase 4: the other replicas (and the old master when asked) repointed.
    SwitchReplicas,
    /// Online switchover, phase 5: RESET SLAVE ALL on the new master, the VIP's last move.
    SwitchCleanup,
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

    /// The steps of an online switchover, in order (MHA's MasterRotate).
    pub const SWITCHOVER: [StepName; 5] = [
        StepName::SwitchCheck,
        StepName::RejectUpdates,
        StepName::SwitchMaster,
        StepName::SwitchReplicas,
        StepName::SwitchCleanup,
    ];

    /// A step that only reads (a run that failed in it changed nothing).
    pub fn reads_only(&self) -> bool {
        matches!(self, StepName::ConfigCheck | StepName::SwitchCheck)
    }

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
            StepName::SwitchCheck => "Phase 1: Configuration Check Phase (online switch)",
            StepName::RejectUpdates => "Phase 2: Rejecting updates Phase",
            StepName::SwitchMaster => "Phase 3: Switching master Phase",
            StepName::SwitchReplicas => "Phase 4: Switching slaves Phase",
            StepName::SwitchCleanup => "Phase 5: New master cleanup phase (online switch)",
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
