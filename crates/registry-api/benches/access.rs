//! What `--auth-enabled` costs a request (docs/spec.md §9): reading the credentials from a
//! request, checking a login token (HMAC-SHA256 and its claims), and deciding by the
//! permissions of a store of 1,000 users, each bound to two roles of ten grants.
//!
//! `cargo bench -p registry-api --bench access`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use registry_api::access::{Credentials, TokenKey};
use registry_core::{Action, Command, IdentityChange, Need, Registry, Resource};

/// The allocator the server runs with (bins/maregistry/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn apply(registry: &Registry, change: IdentityChange) {
    registry.apply(&Command::Identity { change }, 1);
}

/// 1,000 users, each bound to two of 200 roles; each role holds ten grants.
fn identities() -> Registry {
    let registry = Registry::new();
    for user in 0..1_000 {
        apply(
            &registry,
            IdentityChange::CreateUser {
                username: format!("user{user}"),
                password_hash: "$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234".to_owned(),
            },
        );
        for role in [user % 200, (user + 1) % 200] {
            apply(
                &registry,
                IdentityChange::BindRole {
                    role: format!("role{role}"),
                    username: format!("user{user}"),
                },
            );
        }
    }
    for role in 0..200 {
        for grant in 0..10 {
            apply(
                &registry,
                IdentityChange::Grant {
                    role: format!("role{role}"),
                    resource: format!("ns{grant}:*:*"),
                    action: Action::ReadWrite,
                },
            );
        }
    }
    registry
}

fn token_check(c: &mut Criterion) {
    let key = TokenKey::new(b"a benchmark secret of at least 32 bytes").expect("a key");
    let token = key.sign("user500", 4_000_000_000);
    let registry = identities();
    let resource = Resource::service("ns9/DEFAULT_GROUP::orders");
    let uri = format!("/nacos/v1/ns/instance/list?serviceName=orders&namespaceId=ns9&accessToken={token}");
    let request = http::Request::get(uri.as_str()).body(()).expect("a request");
    let mut group = c.benchmark_group("access");
    group.bench_function("credentials_of_a_request", |b| {
        b.iter(|| {
            let mut scratch = Vec::new();
            let credentials = Credentials::of(black_box(&request), &mut scratch);
            black_box(credentials.access_token.is_some());
        })
    });
    group.bench_function("verify_token", |b| {
        b.iter(|| black_box(key.verify(black_box(&token), 1_000).expect("valid")))
    });
    group.bench_function("allows", |b| {
        b.iter(|| {
            let state = registry.identities().read();
            black_box(state.allows(black_box("user500"), &resource, Need::Read))
        })
    });
    group.bench_function("whole_check", |b| {
        b.iter(|| {
            let mut scratch = Vec::new();
            let credentials = Credentials::of(black_box(&request), &mut scratch);
            let token = credentials.access_token.expect("a token");
            let user = key.verify(token, 1_000).expect("valid");
            let state = registry.identities().read();
            black_box(state.users.contains_key(&user) && state.allows(&user, &resource, Need::Read))
        })
    });
    group.finish();
}

criterion_group!(benches, token_check);
criterion_main!(benches);
