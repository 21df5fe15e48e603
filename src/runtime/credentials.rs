//! Credentials are resolved on this manager, from its own files and environment (invariant 7):
//! the replicated group spec names a file or a variable, never a secret.

use crate::adapters::mysql::{Endpoint, Login};
use crate::secret::Secret;
use crate::state::group::{CredentialRef, GroupSpec, ServerSpec};

/// A credential this manager cannot resolve. Names the reference, never a value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read password file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("environment variable {0} is not set")]
    Env(String),
}

/// Resolves a credential reference on this manager.
pub fn resolve(c: &CredentialRef) -> Result<Secret, CredentialError> {
    match c {
        CredentialRef::File(p) => std::fs::read_to_string(p)
            .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
            .map_err(|source| CredentialError::File {
                path: p.clone(),
                source,
            }),
        CredentialRef::Env(v) => std::env::var(v)
            .map(Secret::new)
            .map_err(|_| CredentialError::Env(v.clone())),
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
