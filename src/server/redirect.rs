//! On a separate admin listener, "not leader" redirects must name the leader's ADMIN address:
//! the errors carry the leader's peer address (what Raft knows), and mhactl's client
//! certificate is refused there. This layer rewrites `x-mha-leader-addr` in error responses to
//! the admin address the leader registered in the replicated state.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

use crate::api::{LEADER_ADDR_KEY, LEADER_ID_KEY};

/// Looks up a manager's registered admin address by id.
pub type AdminAddrs = Arc<dyn Fn(u64) -> Option<String> + Send + Sync>;

#[derive(Clone)]
pub struct AdminRedirectLayer {
    lookup: AdminAddrs,
}

impl AdminRedirectLayer {
    pub fn new(lookup: AdminAddrs) -> Self {
        AdminRedirectLayer { lookup }
    }
}

impl<S> tower::Layer<S> for AdminRedirectLayer {
    type Service = AdminRedirect<S>;

    fn layer(&self, inner: S) -> AdminRedirect<S> {
        AdminRedirect {
            inner,
            lookup: self.lookup.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AdminRedirect<S> {
    inner: S,
    lookup: AdminAddrs,
}

fn rewrite<B>(resp: &mut http::Response<B>, lookup: &AdminAddrs) {
    let headers = resp.headers_mut();
    let Some(id) = headers
        .get(LEADER_ID_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    match lookup(id).and_then(|a| http::HeaderValue::try_from(a).ok()) {
        Some(v) => {
            headers.insert(LEADER_ADDR_KEY, v);
        }
        None => {
            // The leader has not registered its admin address yet (it does within a second of
            // starting): its peer address would refuse the client, so no redirect; UNAVAILABLE
            // makes mhactl try its next endpoint instead.
            headers.remove(LEADER_ADDR_KEY);
            headers.remove(LEADER_ID_KEY);
            headers.insert("grpc-status", http::HeaderValue::from_static("14"));
            headers.insert(
                "grpc-message",
                http::HeaderValue::from_static(
                    "not%20the%20leader,%20and%20the%20leader's%20admin%20address%20is%20not%20known%20yet",
                ),
            );
        }
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for AdminRedirect<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<http::Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let fut = self.inner.call(req);
        let lookup = self.lookup.clone();
        Box::pin(async move {
            let mut resp = fut.await?;
            rewrite(&mut resp, &lookup);
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_address_becomes_its_admin_address() {
        let lookup: AdminAddrs = Arc::new(|id| (id == 3).then(|| "10.0.0.3:7201".to_string()));
        let mut resp = http::Response::new(());
        resp.headers_mut()
            .insert(LEADER_ID_KEY, http::HeaderValue::from_static("3"));
        resp.headers_mut().insert(
            LEADER_ADDR_KEY,
            http::HeaderValue::from_static("10.0.0.3:7101"),
        );
        rewrite(&mut resp, &lookup);
        assert_eq!(resp.headers()[LEADER_ADDR_KEY], "10.0.0.3:7201");
        // A leader without a registered admin address: no redirect to its peer address (which
        // refuses clients), but UNAVAILABLE, so mhactl tries its next endpoint.
        resp.headers_mut()
            .insert(LEADER_ID_KEY, http::HeaderValue::from_static("2"));
        resp.headers_mut().insert(
            LEADER_ADDR_KEY,
            http::HeaderValue::from_static("10.0.0.2:7101"),
        );
        resp.headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("9"));
        rewrite(&mut resp, &lookup);
        assert!(resp.headers().get(LEADER_ADDR_KEY).is_none());
        assert_eq!(resp.headers()["grpc-status"], "14");
    }
}
