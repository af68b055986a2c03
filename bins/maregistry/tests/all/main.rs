//! The server's integration tests, one binary (docs/spec.md is what they check). Each
//! module drives real nodes over HTTP as a client would: in this process on
//! `127.0.0.1:0`, or as `maregistry` processes where a fault needs one (`kill -9`,
//! SIGSTOP); the shared fixtures are the `test-support` crate's.

mod adversarial;
mod auth;
mod auth_clients;
mod batch_auth;
mod clients;
mod cluster;
mod config_file;
mod console;
mod console_configs;
mod console_users;
mod consul;
mod consul_clients;
mod elections;
mod faults;
mod gateway;
mod limits;
mod linearizability;
mod nacos2;
mod nacos_config;
mod nacos_config_clients;
mod nacos_config_grpc;
mod openapi;
mod operations;
mod partitions;
mod raft;
mod raft_availability;
mod shutdown;
mod single_node;
mod tls;
mod watch;
