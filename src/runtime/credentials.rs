//! Credentials are resolved on this manager, from its own files and environment (invariant 7):
//! the replicated group spec names a file or a variable, never a secret.

use crate::adapters::mysql::{Endpoint, Login};
use crate::secret::Secret;
use crate::state::group::{CredentialRef, GroupSpec, ServerSpec};

/// Resolves a credential reference on this manager. The error names the reference, never a value.
pub fn resolve(c: &CredentialRef) -> Result<Secret, String> {
    match c {
        CredentialRef::File(p) => std::fs::read_to_string(p)
            .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
            .map_err(|e| format!("cannot read password file {p}: {e}")),
        CredentialRef::Env(v) => std::env::var(v)
            .map(Secret::new)
            .map_err(|_| format!("environment variable {v} is not set")),
    }
}

/// How this manager logs in to one server of the group as the monitor user.
pub fn login(spec: &GroupSpec, server: &ServerSpec, password: &Secret) -> Login {
    Login {
        endpoint: Endpoint {
            host: server.host.clone(),
            port: server.port,
        },
        user: spec.user.clone(),
        password: password.clone(),
    }
}
