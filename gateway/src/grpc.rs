//! The demo's downstream services over gRPC (issue #31): their generated
//! protobuf messages and tonic stubs (from `gateway/proto/*.proto`, see
//! `build.rs`), each service's behaviour (latency, errors, capacity), and
//! the one call the gateway makes to each.
//!
//! `userflux-services` serves all seven on one port; the gateway with
//! `--grpc ADDR` calls them there, one HTTP/2 connection for all calls
//! (tonic's `Channel`: streams multiplexed, the connection reused), each
//! call with a deadline.

use crate::routes::{Latency, RoutesFile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// The generated messages and stubs, one module per `.proto` package.
pub mod pb {
    pub mod auth {
        tonic::include_proto!("userflux.demo.auth");
    }
    pub mod users {
        tonic::include_proto!("userflux.demo.users");
    }
    pub mod catalog {
        tonic::include_proto!("userflux.demo.catalog");
    }
    pub mod pricing {
        tonic::include_proto!("userflux.demo.pricing");
    }
    pub mod inventory {
        tonic::include_proto!("userflux.demo.inventory");
    }
    pub mod payments {
        tonic::include_proto!("userflux.demo.payments");
    }
    pub mod carts {
        tonic::include_proto!("userflux.demo.carts");
    }
}

/// The services, as routes name them.
pub const SERVICES: [&str; 7] = [
    "auth",
    "users",
    "catalog",
    "pricing",
    "inventory",
    "payments",
    "carts",
];

/// One service's behaviour: how long a call takes once it has a slot, how
/// often it fails (`UNAVAILABLE`), how many calls it runs at once (more
/// wait in its queue).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    #[serde(default)]
    pub latency: Latency,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default = "default_capacity")]
    pub capacity: u32,
}

fn default_capacity() -> u32 {
    1024
}

/// `userflux-services --config FILE`:
/// `{"services": {"users": {"latency": {"p50": "2ms", "p99": "8ms"}, "error_rate": 0, "capacity": 256}}}`;
/// a service not named keeps its default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesFile {
    pub services: BTreeMap<String, Behaviour>,
}

impl ServicesFile {
    /// The defaults: each service as the default routes' first call to it
    /// sets it (so `--grpc` shows the same latencies as the simulation).
    pub fn defaults() -> ServicesFile {
        let mut services = BTreeMap::new();
        for r in RoutesFile::default_routes().routes {
            for c in r.calls {
                services.entry(c.service.clone()).or_insert(Behaviour {
                    latency: c.latency,
                    error_rate: c.error_rate,
                    capacity: c.capacity,
                });
            }
        }
        ServicesFile { services }
    }

    /// Parses and validates over the defaults; errors name the field path.
    pub fn from_json(text: &str) -> Result<ServicesFile, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let file: ServicesFile = serde_path_to_error::deserialize(value)
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
        let mut all = ServicesFile::defaults();
        for (name, b) in file.services {
            if !SERVICES.contains(&name.as_str()) {
                return Err(format!(
                    "services.{name}: no such service (there are {})",
                    SERVICES.join(", ")
                ));
            }
            if !(0.0..=1.0).contains(&b.error_rate) {
                return Err(format!(
                    "services.{name}.error_rate: must be between 0 and 1, got {}",
                    b.error_rate
                ));
            }
            if b.capacity == 0 {
                return Err(format!("services.{name}.capacity: must be at least 1"));
            }
            all.services.insert(name, b);
        }
        Ok(all)
    }
}

/// A service at work: its behaviour, its slots, its random numbers.
pub struct Sim {
    behaviour: Behaviour,
    slots: tokio::sync::Semaphore,
    rng: std::sync::Mutex<u64>,
}

impl Sim {
    pub fn new(behaviour: Behaviour, seed: u64) -> Arc<Sim> {
        Arc::new(Sim {
            behaviour,
            slots: tokio::sync::Semaphore::new(behaviour.capacity as usize),
            rng: std::sync::Mutex::new(seed | 1),
        })
    }

    /// One call: a slot (or a wait in the queue), the latency, then OK or
    /// `UNAVAILABLE` at the error rate.
    pub async fn serve(&self) -> Result<(), tonic::Status> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| tonic::Status::unavailable("shutting down"))?;
        let (latency, fail) = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            let latency = self
                .behaviour
                .latency
                .sample(|| crate::fanout::normal(&mut rng));
            let fail = self.behaviour.error_rate > 0.0
                && crate::fanout::next_f64(&mut rng) < self.behaviour.error_rate;
            (latency, fail)
        };
        tokio::time::sleep(latency).await;
        if fail {
            return Err(tonic::Status::unavailable("simulated failure"));
        }
        Ok(())
    }
}

/// A service's server: its [`Sim`] answers each call, then the reply.
pub struct Served(pub Arc<Sim>);

#[tonic::async_trait]
impl pb::auth::auth_server::Auth for Served {
    async fn login(
        &self,
        request: Request<pb::auth::LoginRequest>,
    ) -> Result<Response<pb::auth::LoginReply>, Status> {
        self.0.serve().await?;
        let user = request.into_inner().user;
        Ok(Response::new(pb::auth::LoginReply {
            token: format!("token-of-{user}"),
        }))
    }
}

#[tonic::async_trait]
impl pb::users::users_server::Users for Served {
    async fn get_user(
        &self,
        request: Request<pb::users::GetUserRequest>,
    ) -> Result<Response<pb::users::User>, Status> {
        self.0.serve().await?;
        let id = request.into_inner().id;
        Ok(Response::new(pb::users::User {
            id,
            name: format!("user {id}"),
        }))
    }
}

#[tonic::async_trait]
impl pb::catalog::catalog_server::Catalog for Served {
    async fn get_product(
        &self,
        request: Request<pb::catalog::GetProductRequest>,
    ) -> Result<Response<pb::catalog::Product>, Status> {
        self.0.serve().await?;
        let id = request.into_inner().id;
        Ok(Response::new(pb::catalog::Product {
            id,
            title: format!("product {id}"),
        }))
    }
}

#[tonic::async_trait]
impl pb::pricing::pricing_server::Pricing for Served {
    async fn quote(
        &self,
        request: Request<pb::pricing::QuoteRequest>,
    ) -> Result<Response<pb::pricing::Price>, Status> {
        self.0.serve().await?;
        let id = request.into_inner().product_id;
        Ok(Response::new(pb::pricing::Price {
            cents: 100 + id % 900,
            currency: "EUR".into(),
        }))
    }
}

#[tonic::async_trait]
impl pb::inventory::inventory_server::Inventory for Served {
    async fn reserve(
        &self,
        _request: Request<pb::inventory::ReserveRequest>,
    ) -> Result<Response<pb::inventory::Reservation>, Status> {
        self.0.serve().await?;
        Ok(Response::new(pb::inventory::Reservation { reserved: true }))
    }
}

#[tonic::async_trait]
impl pb::payments::payments_server::Payments for Served {
    async fn charge(
        &self,
        request: Request<pb::payments::ChargeRequest>,
    ) -> Result<Response<pb::payments::Receipt>, Status> {
        self.0.serve().await?;
        let order = request.into_inner().order_id;
        Ok(Response::new(pb::payments::Receipt {
            receipt_id: format!("r-{order}"),
        }))
    }
}

#[tonic::async_trait]
impl pb::carts::carts_server::Carts for Served {
    async fn add_item(
        &self,
        request: Request<pb::carts::AddItemRequest>,
    ) -> Result<Response<pb::carts::Cart>, Status> {
        self.0.serve().await?;
        let cart_id = request.into_inner().cart_id;
        Ok(Response::new(pb::carts::Cart { cart_id, items: 1 }))
    }
}

/// All seven services on one tonic server, each with its behaviour.
pub fn router(file: &ServicesFile, seed: u64) -> tonic::transport::server::Router {
    let sim = |name: &str, n: u64| {
        let b = file.services.get(name).copied().unwrap_or(Behaviour {
            latency: Latency::default(),
            error_rate: 0.0,
            capacity: default_capacity(),
        });
        Served(Sim::new(b, seed.wrapping_add(n)))
    };
    tonic::transport::Server::builder()
        .add_service(pb::auth::auth_server::AuthServer::new(sim("auth", 1)))
        .add_service(pb::users::users_server::UsersServer::new(sim("users", 2)))
        .add_service(pb::catalog::catalog_server::CatalogServer::new(sim(
            "catalog", 3,
        )))
        .add_service(pb::pricing::pricing_server::PricingServer::new(sim(
            "pricing", 4,
        )))
        .add_service(pb::inventory::inventory_server::InventoryServer::new(sim(
            "inventory",
            5,
        )))
        .add_service(pb::payments::payments_server::PaymentsServer::new(sim(
            "payments", 6,
        )))
        .add_service(pb::carts::carts_server::CartsServer::new(sim("carts", 7)))
}

/// One call to `SERVICES[service]`, with a deadline (`grpc-timeout`);
/// `n` varies the request (the gateway's call count).
pub async fn call(
    channel: Channel,
    service: usize,
    deadline: Duration,
    n: u64,
) -> Result<(), Status> {
    fn req<T>(message: T, deadline: Duration) -> Request<T> {
        let mut r = Request::new(message);
        r.set_timeout(deadline);
        r
    }
    let d = deadline;
    match SERVICES[service] {
        "auth" => {
            let m = pb::auth::LoginRequest {
                user: format!("user{n}"),
            };
            pb::auth::auth_client::AuthClient::new(channel)
                .login(req(m, d))
                .await
                .map(drop)
        }
        "users" => pb::users::users_client::UsersClient::new(channel)
            .get_user(req(pb::users::GetUserRequest { id: n }, d))
            .await
            .map(drop),
        "catalog" => pb::catalog::catalog_client::CatalogClient::new(channel)
            .get_product(req(pb::catalog::GetProductRequest { id: n }, d))
            .await
            .map(drop),
        "pricing" => pb::pricing::pricing_client::PricingClient::new(channel)
            .quote(req(pb::pricing::QuoteRequest { product_id: n }, d))
            .await
            .map(drop),
        "inventory" => {
            let m = pb::inventory::ReserveRequest {
                product_id: n,
                quantity: 1,
            };
            pb::inventory::inventory_client::InventoryClient::new(channel)
                .reserve(req(m, d))
                .await
                .map(drop)
        }
        "payments" => {
            let m = pb::payments::ChargeRequest {
                order_id: n,
                cents: 1000,
            };
            pb::payments::payments_client::PaymentsClient::new(channel)
                .charge(req(m, d))
                .await
                .map(drop)
        }
        _ => {
            let m = pb::carts::AddItemRequest {
                cart_id: n,
                product_id: n,
            };
            pb::carts::carts_client::CartsClient::new(channel)
                .add_item(req(m, d))
                .await
                .map(drop)
        }
    }
}

/// The gateway's way to its services (`--grpc ADDR`): one channel (one
/// HTTP/2 connection, reused by every call), the deadline, and the
/// runtime and the way back to the event loop.
pub struct Calls {
    channel: Channel,
    deadline: Duration,
    bridge: crate::http2::Bridge,
    issued: u64,
}

impl Calls {
    pub fn new(
        addr: std::net::SocketAddr,
        deadline: Duration,
        bridge: crate::http2::Bridge,
    ) -> Result<Calls, String> {
        let _in_runtime = bridge.handle.enter();
        let channel = Channel::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("--grpc {addr}: {e}"))?
            .connect_lazy();
        Ok(Calls {
            channel,
            deadline,
            bridge,
            issued: 0,
        })
    }

    /// Makes the call of `ticket` to `SERVICES[service]`; its end comes back
    /// to the event loop as [`crate::http2::ToLoop::CallDone`].
    pub fn issue(&mut self, ticket: crate::fanout::Ticket, service: usize) {
        self.issued += 1;
        let (channel, deadline, n) = (self.channel.clone(), self.deadline, self.issued);
        let bridge = self.bridge.clone();
        self.bridge.handle.spawn(async move {
            let failed = call(channel, service, deadline, n).await.is_err();
            bridge.send(crate::http2::ToLoop::CallDone { ticket, failed });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_files_merge_over_the_defaults_and_errors_name_the_field() {
        let f = ServicesFile::from_json(
            r#"{"services": {"users": {"latency": "1ms", "error_rate": 0.5}}}"#,
        )
        .unwrap();
        assert_eq!(f.services["users"].error_rate, 0.5);
        assert_eq!(f.services.len(), SERVICES.len());
        for (json, want) in [
            (
                r#"{"services": {"user": {}}}"#,
                "services.user: no such service",
            ),
            (
                r#"{"services": {"carts": {"error_rate": 2}}}"#,
                "services.carts.error_rate",
            ),
            (
                r#"{"services": {"carts": {"capacity": 0}}}"#,
                "services.carts.capacity",
            ),
            (
                r#"{"services": {"carts": {"latncy": "1ms"}}}"#,
                "unknown field `latncy`",
            ),
        ] {
            let e = ServicesFile::from_json(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn the_defaults_name_every_service() {
        let d = ServicesFile::defaults();
        for s in SERVICES {
            assert!(d.services.contains_key(s), "{s}");
        }
    }
}
