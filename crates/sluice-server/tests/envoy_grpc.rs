//! Issue 13: the gRPC server in-process (`server::run` on 127.0.0.1:0 in
//! the test's runtime), asked by clients Sluice does not share code with:
//! envoy-types' own generated `RateLimitServiceClient`, tonic-health's and
//! tonic-reflection's generated clients. Every example of
//! envoyproxy/ratelimit's README on the memory store and on a real Redis,
//! on a fake clock so that every window is exact; a store failure; health
//! through the drain; reflection; the message and connection bounds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::envoy_examples::{self, EXAMPLES, OK, request};
use common::envoy_services::{self, redis};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use sluice_server::config::envoy::EnvoyConfig;
use sluice_server::config::{GrpcSettings, ServerSettings};
use sluice_server::envoy::{RateLimitRequest, RateLimitResponse};
use sluice_server::server::{self, Listeners, listener};
use sluice_server::service::DecisionService;
use sluice_testkit::RedisServer;
use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const RLS: &str = "envoy.service.ratelimit.v3.RateLimitService";

/// A running server: its gRPC address, and the switch that starts its drain.
struct Server {
    grpc: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves `service` with the gRPC bounds `grpc`.
    async fn start(service: DecisionService, grpc: GrpcSettings) -> Server {
        let http = listener::bind("127.0.0.1:0").await.unwrap();
        let grpc_listener = listener::bind("127.0.0.1:0").await.unwrap();
        let address = grpc_listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = Listeners::http(http).with_grpc(grpc_listener, grpc);
        let done = tokio::spawn(server::run(
            service,
            listeners,
            ServerSettings::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            grpc: address,
            stop: Some(stop),
            done,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn client(&self) -> RateLimitServiceClient<Channel> {
        RateLimitServiceClient::new(self.channel().await)
    }

    /// Starts the drain (as SIGTERM does).
    fn stop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
    }
}

fn memory(config: EnvoyConfig) -> DecisionService {
    envoy_services::memory(config).0
}

async fn ask(
    client: &mut RateLimitServiceClient<Channel>,
    request: RateLimitRequest,
) -> Result<RateLimitResponse, tonic::Status> {
    client
        .should_rate_limit(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn every_example(start: impl AsyncFn(EnvoyConfig) -> DecisionService) {
    for example in EXAMPLES {
        let server = Server::start(start(example.load()).await, GrpcSettings::default()).await;
        let client = server.client().await;
        envoy_examples::run(example, |r| {
            let mut client = client.clone();
            async move { ask(&mut client, r).await.unwrap() }
        })
        .await;
    }
}

#[tokio::test]
async fn every_readme_example_through_grpc_on_the_memory_store() {
    every_example(async |config| memory(config)).await;
}

#[tokio::test]
async fn every_readme_example_through_grpc_on_redis() {
    let redis_server = RedisServer::start();
    let url = redis_server.url();
    every_example(async |config| {
        redis_server.cli(&["FLUSHALL"]);
        redis(&url, config).await
    })
    .await;
}

const CONFIG: &str = "domain: rl
descriptors:
  - key: user
    rate_limit:
      unit: minute
      requests_per_unit: 3
";

fn config() -> EnvoyConfig {
    envoy_services::load(CONFIG)
}

#[tokio::test]
async fn a_store_failure_answers_unavailable_and_a_bad_request_invalid_argument() {
    let mut redis_server = RedisServer::start();
    let server = Server::start(
        redis(&redis_server.url(), config()).await,
        GrpcSettings::default(),
    )
    .await;
    let mut client = server.client().await;
    let user = request("rl", &[&[("user", "a")]]);
    let answer = ask(&mut client, user.clone()).await.unwrap();
    assert_eq!(
        (answer.overall_code, answer.statuses[0].limit_remaining),
        (OK, 2)
    );
    redis_server.kill();
    let status = ask(&mut client, user).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unavailable,
        "on_store_error: deny, so that Envoy's failure_mode_deny decides: {status:?}"
    );
    let status = ask(&mut client, RateLimitRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "no domain: {status:?}"
    );
}

#[tokio::test]
async fn health_is_serving_until_the_drain_and_an_unknown_service_is_not_found() {
    let mut server = Server::start(memory(config()), GrpcSettings::default()).await;
    let mut health = HealthClient::new(server.channel().await);
    let check = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };
    for service in ["", RLS] {
        let answer = health.check(check(service)).await.unwrap().into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health.check(check("no.such.Service")).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let mut watch = health.watch(check("")).await.unwrap().into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    server.stop();
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(
        next.status(),
        ServingStatus::NotServing,
        "the drain is announced to watchers"
    );
    drop(watch);
    drop(health);
    server.done.await.unwrap().unwrap();
}

#[tokio::test]
async fn reflection_lists_and_describes_the_rate_limit_service() {
    use prost::Message;
    use prost_types::FileDescriptorProto;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let server = Server::start(memory(config()), GrpcSettings::default()).await;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let asks = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol(RLS.to_owned()),
        // What a client asks next: a file the service's file imports.
        MessageRequest::FileByFilename(
            "envoy/extensions/common/ratelimit/v3/ratelimit.proto".to_owned(),
        ),
    ];
    let requests = tokio_stream::iter(asks.map(|m| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    }));
    let mut answers = reflection
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let mut next = async || answers.message().await.unwrap().unwrap().message_response;
    let Some(MessageResponse::ListServicesResponse(list)) = next().await else {
        panic!("not a list of services")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in [
        RLS,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let files = |answer| match answer {
        Some(MessageResponse::FileDescriptorResponse(files)) => {
            let decode = |bytes: &Vec<u8>| FileDescriptorProto::decode(&bytes[..]).unwrap();
            files
                .file_descriptor_proto
                .iter()
                .map(decode)
                .collect::<Vec<_>>()
        }
        other => panic!("not descriptors: {other:?}"),
    };
    let rls = files(next().await);
    assert_eq!(rls[0].name(), "envoy/service/ratelimit/v3/rls.proto");
    assert_eq!(rls[0].service[0].name(), "RateLimitService");
    let imported = "envoy/extensions/common/ratelimit/v3/ratelimit.proto";
    assert!(
        rls[0].dependency.iter().any(|d| d == imported),
        "{:?}",
        rls[0].dependency
    );
    let descriptor = files(next().await);
    assert_eq!(descriptor[0].name(), imported);
    assert!(
        (descriptor[0].message_type.iter()).any(|m| m.name() == "RateLimitDescriptor"),
        "the request's descriptor message is described"
    );
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_and_the_connection_serves_on() {
    let mut grpc = GrpcSettings::default();
    grpc.max_message_bytes = 1024;
    let server = Server::start(memory(config()), grpc).await;
    let mut client = server.client().await;
    let huge = "x".repeat(2048);
    let status = ask(&mut client, request("rl", &[&[("user", &huge)]]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    let answer = ask(&mut client, request("rl", &[&[("user", "a")]]))
        .await
        .unwrap();
    assert_eq!(answer.statuses[0].limit_remaining, 2);
}

#[tokio::test]
async fn clients_beyond_the_connection_bound_wait_and_harm_none_of_those_served() {
    let mut grpc = GrpcSettings::default();
    grpc.max_connections = 2;
    let server = Server::start(memory(config()), grpc).await;
    let mut first = server.client().await;
    let mut second = server.client().await;
    let user = request("rl", &[&[("user", "a")]]);
    assert_eq!(
        ask(&mut first, user.clone()).await.unwrap().statuses[0].limit_remaining,
        2
    );
    // The third connects (the kernel's backlog accepts it) but is not
    // served while both slots are held...
    let third = server.channel().await;
    let mut third = RateLimitServiceClient::new(third);
    let waiting =
        tokio::spawn(async move { ask(&mut third, request("rl", &[&[("user", "b")]])).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served beyond the bound of 2"
    );
    // ...while those served are answered as before.
    assert_eq!(
        ask(&mut second, user.clone()).await.unwrap().statuses[0].limit_remaining,
        1
    );
    assert_eq!(
        ask(&mut first, user).await.unwrap().statuses[0].limit_remaining,
        0
    );
    // A slot freed, the third is served.
    drop(first);
    let answer = waiting.await.unwrap().unwrap();
    assert_eq!(answer.statuses[0].limit_remaining, 2);
}

/// A gRPC listener whose silent connections are cut after 600 ms (a ping
/// after 400 ms of silence, answered within 200 ms), serving one at a time.
fn one_connection_quick_pings() -> GrpcSettings {
    let mut grpc = GrpcSettings::default();
    grpc.max_connections = 1;
    grpc.keepalive_interval = Duration::from_millis(400);
    grpc.keepalive_timeout = Duration::from_millis(200);
    grpc
}

#[tokio::test]
async fn a_silent_connection_is_cut_and_frees_its_slot() {
    use tokio::io::AsyncReadExt;
    let server = Server::start(memory(config()), one_connection_quick_pings()).await;
    // Never sends the HTTP/2 preface: hyper alone would wait for ever.
    let mut silent = tokio::net::TcpStream::connect(server.grpc).await.unwrap();
    // It holds the only slot: the client is served once it is cut.
    let mut client = server.client().await;
    let answer = ask(&mut client, request("rl", &[&[("user", "a")]]));
    let answer = tokio::time::timeout(Duration::from_secs(30), answer).await;
    let answer = answer.expect("the silent connection still holds the only slot");
    assert_eq!(answer.unwrap().statuses[0].limit_remaining, 2);
    // The server closed it (hyper may first write its SETTINGS).
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest).await;
}

#[tokio::test]
async fn an_idle_client_that_answers_pings_keeps_its_connection() {
    let server = Server::start(memory(config()), one_connection_quick_pings()).await;
    let mut idle = server.client().await;
    let user = request("rl", &[&[("user", "a")]]);
    assert_eq!(
        ask(&mut idle, user.clone()).await.unwrap().statuses[0].limit_remaining,
        2
    );
    // Three times the silence bound: the server pings, the client answers.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let mut other = server.client().await;
    let waiting =
        tokio::spawn(async move { ask(&mut other, request("rl", &[&[("user", "b")]])).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the idle client's connection was cut: its slot went to another"
    );
    assert_eq!(
        ask(&mut idle, user).await.unwrap().statuses[0].limit_remaining,
        1
    );
    drop(idle);
    assert_eq!(
        waiting.await.unwrap().unwrap().statuses[0].limit_remaining,
        2
    );
}

#[tokio::test]
async fn a_decision_beyond_the_request_timeout_answers_deadline_exceeded() {
    let redis_server = RedisServer::start();
    let mut grpc = GrpcSettings::default();
    grpc.request_timeout = Duration::from_millis(200);
    // Redis's own timeout (2 s) is longer: the request timeout answers.
    let server = Server::start(redis(&redis_server.url(), config()).await, grpc).await;
    let mut client = server.client().await;
    let user = request("rl", &[&[("user", "a")]]);
    assert_eq!(
        ask(&mut client, user.clone()).await.unwrap().statuses[0].limit_remaining,
        2
    );
    redis_server.cli(&["CLIENT", "PAUSE", "1500", "ALL"]);
    let status = ask(&mut client, user).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}
